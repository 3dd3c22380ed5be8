"""The container image's files say what the README promises of them: a non-root user, a
health check on the liveness route, the demo by default; compose on PostgreSQL with the
secrets from the environment; the Helm chart's probes on routes the server serves.

(The image itself is not built here: see the README, Containers.)"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_the_image_runs_as_a_user_with_a_health_check_and_the_demo_by_default() -> None:
    instructions = _instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) == 2  # build, then a runtime without the build's leftovers
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users == ["10001:10001"]
    health = next(rest for keyword, rest in instructions if keyword == "HEALTHCHECK")
    assert "http://127.0.0.1:3000/v1/status" in health
    command = next(rest for keyword, rest in instructions if keyword == "CMD")
    assert '"databunker", "demo"' in command
    assert ("VOLUME", '["/var/lib/databunker"]') in instructions


def test_compose_runs_on_postgresql_with_the_secrets_from_the_environment() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    vault = compose["services"]["databunker"]
    assert vault["environment"]["DATABUNKER_DB"].startswith("postgresql://")
    assert vault["environment"]["DATABUNKER_MASTERKEY"].startswith("${DATABUNKER_MASTERKEY:?")
    assert vault["read_only"] is True
    assert vault["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_helm_chart_probes_readiness_and_liveness_on_served_routes() -> None:
    chart = ROOT / "deploy" / "helm" / "databunker"
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["name"] == "databunker"
    deployment = (chart / "templates" / "deployment.yaml").read_text()
    assert "readinessProbe:\n            httpGet: {path: /v1/sys/ready" in deployment
    assert "livenessProbe:\n            httpGet: {path: /v1/status" in deployment
    assert "readOnlyRootFilesystem: true" in deployment
    assert "runAsNonRoot: true" in deployment
    secret = (chart / "templates" / "secret.yaml").read_text()
    assert "DATABUNKER_MASTERKEY" in secret
