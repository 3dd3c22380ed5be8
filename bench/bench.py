"""Throughput of a real ``databunker serve`` under wrk, as ratios to a bare Starlette route.

For each database: ``databunker init`` into a temporary directory (and, for PostgreSQL, a
temporary cluster), ``databunker serve`` with its production defaults, a set of pre-created
users, then one wrk run per scenario over keep-alive connections, sampling the server's
resident memory meanwhile. The bare Starlette route (same uvicorn options, its own process)
and ``GET /v1/sys/uiconfiguration`` (the vault's whole web stack, no database work) are
measured in the same run, so the ratios hold on a noisy machine. Prints a Markdown table and
writes the raw figures to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the temporary PostgreSQL cluster of the test suite

MASTER_KEY = secrets.token_hex(32)
ROOT_TOKEN = str(uuid.uuid4())
PYTHON = sys.executable

# (name, lua script, path for the minimal scripts)
SCENARIOS = [
    ("minimal: bare Starlette route", "minimal", "/v1/user/token/abc"),
    ("minimal: vault stack, /v1/sys/uiconfiguration", "minimal", "/v1/sys/uiconfiguration"),
    ("create user", "create", None),
    ("get user by token", "get_token", None),
    ("get user by email", "get_email", None),
    ("update user", "update", None),
    ("session create+get", "session", None),
]


@dataclass
class Result:
    database: str
    scenario: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    rss_max_mb: float
    errors: int
    ratio_to_minimal: float = 0.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(port: int, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server on port {port} did not come up")


@contextmanager
def process(args: list[str], env: dict[str, str], cwd: Path, port: int, path: str) -> Iterator[int]:
    log = open(cwd / f"server-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(port, path, proc)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def server_env(database_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", "/nonexistent"),
        "DATABUNKER_MASTERKEY": MASTER_KEY,
        "DATABUNKER_ROOTTOKEN": ROOT_TOKEN,
        "DATABUNKER_DB": database_url,
    }


def create_users(port: int, count: int, tokens_file: Path) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"X-Bunker-Token": ROOT_TOKEN, "Content-Type": "application/json"}
    tokens = []
    for i in range(1, count + 1):
        body = {"email": f"user-{i}@bench.example", "login": f"user{i}", "name": f"User {i}"}
        conn.request("POST", "/v1/user", json.dumps(body), headers)
        answer = json.loads(conn.getresponse().read())
        if answer.get("status") != "ok":
            raise SystemExit(f"could not create the users: {answer}")
        tokens.append(answer["token"])
    tokens_file.write_text("\n".join(tokens) + "\n")


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.max_kb = 0
        self.stopped = threading.Event()

    def sample(self) -> None:
        """The largest resident size of one serving process: the server itself, or each of
        its worker processes when it supervises some."""
        for pid in [self.pid, *children(self.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.max_kb = max(self.max_kb, int(line.split()[1]))
            except OSError:
                pass

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            self.sample()


def run_wrk(args: argparse.Namespace, port: int, script: str, env: dict[str, str]) -> dict:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--latency",
        "-s",
        str(ROOT / "bench" / "lua" / f"{script}.lua"),
        f"http://127.0.0.1:{port}",
    ]
    done = subprocess.run(
        command, env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            figures: dict = json.loads(line.removeprefix("BENCH_RESULT "))
            figures["raw"] = done.stdout
            return figures
    raise SystemExit(f"wrk failed:\n{done.stdout}\n{done.stderr}")


def measure(
    args: argparse.Namespace, database: str, name: str, script: str, port: int, pid: int, env: dict
) -> Result:
    sampler = RssSampler(pid)
    sampler.sample()
    sampler.start()
    figures = run_wrk(args, port, script, env)
    sampler.stopped.set()
    sampler.join()
    seconds = figures["duration_us"] / 1e6
    result = Result(
        database=database,
        scenario=name,
        requests_per_second=figures["requests"] / seconds,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        rss_max_mb=sampler.max_kb / 1024,
        errors=figures["socket_errors"] + max(figures["status_errors"], figures["bad_answers"]),
    )
    print(
        f"  {name}: {result.requests_per_second:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
        f"p99 {result.p99_ms:.1f} ms, RSS {result.rss_max_mb:.0f} MB, errors {result.errors}",
        file=sys.stderr,
    )
    return result


def bench_database(args: argparse.Namespace, database: str, url: str, work: Path) -> list[Result]:
    env = server_env(url)
    init = subprocess.run(
        [PYTHON, "-m", "databunker", "init"], env=env, cwd=work, capture_output=True, check=False
    )
    if init.returncode != 0:
        raise SystemExit(f"databunker init failed: {init.stderr.decode()}")
    results: list[Result] = []
    tokens_file = work / "tokens.txt"
    wrk_env = {
        "BENCH_ROOT_TOKEN": ROOT_TOKEN,
        "BENCH_TOKENS": str(tokens_file),
        "BENCH_RUN": secrets.token_hex(4),
    }
    minimal_port = free_port()
    workers = str(args.workers)
    minimal = [PYTHON, str(ROOT / "bench" / "minimal_app.py"), str(minimal_port), workers]
    with process(minimal, env, work, minimal_port, "/v1/user/token/abc") as pid:
        name, script, path = SCENARIOS[0]
        results.append(
            measure(
                args, database, name, script, minimal_port, pid, {**wrk_env, "BENCH_PATH": path}
            )
        )
    port = free_port()
    serve = [PYTHON, "-m", "databunker", "serve", "--host", "127.0.0.1", "--port", str(port)]
    serve += ["--workers", workers]
    serve_env = dict(env)
    if args.audit_chain == "off":
        serve_env["PYTHONPATH"] = str(ROOT / "bench" / "unchained")
    chosen = [s for s in SCENARIOS[1:] if not args.only or any(o in s[0] for o in args.only)]
    with process(serve, serve_env, work, port, "/v1/status") as pid:
        create_users(port, args.users, tokens_file)
        for name, script, path in chosen:
            extra = {"BENCH_PATH": path} if path else {}
            results.append(measure(args, database, name, script, port, pid, {**wrk_env, **extra}))
    base = results[0].requests_per_second
    for result in results:
        result.ratio_to_minimal = result.requests_per_second / base if base else 0.0
    wanted = not args.only or any(o in BALANCED for o in args.only)
    if database != "sqlite" and wanted and args.balanced:
        results.append(bench_balanced(args, database, serve_env, work, wrk_env, base))
    if args.import_users and (not args.only or any(o in IMPORT for o in args.only)):
        results.append(bench_import(database, env, work, args.import_users))
    return results


BALANCED = "2 instances behind haproxy: get user by token"
HAPROXY_CONFIG = """global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend vault
    bind 127.0.0.1:{port}
    default_backend instances
backend instances
    balance roundrobin
{servers}
"""


def bench_balanced(
    args: argparse.Namespace,
    database: str,
    env: dict[str, str],
    work: Path,
    wrk_env: dict[str, str],
    base: float,
) -> Result:
    """Two ``databunker serve`` instances on the one database, each with half the worker
    processes, behind haproxy (round robin, keep-alive); wrk talks to haproxy."""
    ports = [free_port(), free_port()]
    workers = str(max(args.workers // 2, 1))
    with contextlib.ExitStack() as stack:
        pids = []
        for port in ports:
            serve = [PYTHON, "-m", "databunker", "serve", "--host", "127.0.0.1"]
            serve += ["--port", str(port), "--workers", workers]
            pids.append(stack.enter_context(process(serve, env, work, port, "/v1/status")))
        front = free_port()
        servers = "\n".join(
            f"    server vault{n} 127.0.0.1:{port}" for n, port in enumerate(ports, 1)
        )
        config = work / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=front, servers=servers), encoding="utf-8")
        found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
        if found is None:
            raise SystemExit("haproxy is not installed (bench/run installs it)")
        haproxy = [found, "-f", str(config), "-db"]
        stack.enter_context(process(haproxy, env, work, front, "/v1/status"))
        result = measure(args, database, BALANCED, "get_token", front, pids[0], wrk_env)
    result.ratio_to_minimal = result.requests_per_second / base if base else 0.0
    return result


IMPORT = "bulk import (CLI)"


def bench_import(database: str, env: dict[str, str], work: Path, count: int) -> Result:
    """``databunker import`` of ``count`` new users (email, phone, name) into the database
    the scenarios used, timed around the command; its rate is users per second."""
    lines = work / "import.jsonl"
    run = secrets.token_hex(4)
    with lines.open("w", encoding="utf-8") as out:
        for i in range(count):
            profile = {
                "email": f"import-{run}-{i}@bench.example",
                "phone": f"+4477009{i:05d}",
                "name": f"Imported {i}",
            }
            out.write(json.dumps(profile) + "\n")
    done = subprocess.run(
        [PYTHON, "-m", "databunker", "import", str(lines)],
        env=env,
        cwd=work,
        capture_output=True,
        check=False,
    )
    report = done.stderr.decode()
    # The command's own summary: its time excludes the interpreter's start-up.
    summary = re.search(
        r"imported ([\d,]+) users, skipped ([\d,]+) lines in ([\d.]+) s \(([\d,]+) users/s\)",
        report,
    )
    if done.returncode != 0 or summary is None:
        raise SystemExit(f"databunker import failed: {report[-2000:]}")
    imported, skipped = (int(summary[n].replace(",", "")) for n in (1, 2))
    if imported != count or skipped:
        raise SystemExit(f"databunker import took {imported} of {count} users: {report[-2000:]}")
    rate = float(summary[4].replace(",", ""))
    print(f"  {IMPORT}: {count:,} users in {summary[3]} s, {rate:,.0f} users/s", file=sys.stderr)
    return Result(database, f"{IMPORT}, {count:,} users (users/s)", rate, 0.0, 0.0, 0.0, 0)


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def table(results: list[Result]) -> str:
    rows = [
        "| database | scenario | requests/s | p50 ms | p99 ms | RSS MB | vs minimal | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if r.scenario.startswith(IMPORT):  # a rate of users, not of requests
            rows.append(f"| {r.database} | {r.scenario} | {r.requests_per_second:,.0f} | | | | | |")
            continue
        rows.append(
            f"| {r.database} | {r.scenario} | {r.requests_per_second:,.0f} | {r.p50_ms:.1f} "
            f"| {r.p99_ms:.1f} | {r.rss_max_mb:.0f} | {r.ratio_to_minimal:.2f} | {r.errors} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per scenario")
    parser.add_argument(
        "--db", choices=["sqlite", "postgresql", "mariadb", "both", "all"], default="sqlite"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=1000, help="users created beforehand")
    parser.add_argument(
        "--import-users",
        type=int,
        default=20000,
        help="users for the bulk import row (databunker import; 0: no such row)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="server processes (default: one per CPU, the production advice)",
    )
    parser.add_argument(
        "--no-balanced",
        dest="balanced",
        action="store_false",
        help="leave out the row of two instances behind haproxy",
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="run only the scenarios whose name contains TEXT (repeatable; the bare route runs)",
    )
    parser.add_argument(
        "--audit-chain",
        choices=["on", "off"],
        default="on",
        help="off: audit events without their chain link (to measure what the chain costs)",
    )
    args = parser.parse_args()

    results: list[Result] = []
    databases = {"both": ["sqlite", "postgresql"], "all": ["sqlite", "postgresql", "mariadb"]}.get(
        args.db, [args.db]
    )
    for database in databases:
        print(f"{database}:", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="databunker-bench-") as folder:
            work = Path(folder)
            if database == "sqlite":
                results += bench_database(args, database, f"sqlite:///{work}/vault.db", work)
                continue
            if database == "mariadb":
                from support.mariadb import TemporaryMariaDB

                with TemporaryMariaDB() as maria:
                    url = maria.create_database("bench")
                    results += bench_database(args, database, url, work)
                continue
            from support.postgres import TemporaryPostgres

            with TemporaryPostgres() as server:
                url = server.create_database("bench")
                results += bench_database(args, database, url, work)

    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    about = (
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}; {args.workers} server "
        f"worker(s); wrk -t{args.threads} -c{args.connections} -d{args.seconds}s on the same "
        f"machine; audit chain {args.audit_chain}"
    )
    args.results.mkdir(parents=True, exist_ok=True)
    raw = {"machine": about, "results": [asdict(r) for r in results]}
    (args.results / f"{stamp}.json").write_text(json.dumps(raw, indent=2) + "\n")
    print(f"\n{about}\n\n{table(results)}")


if __name__ == "__main__":
    main()
