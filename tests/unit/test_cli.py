"""The demo's banner names an address one can open, whatever address it listens on."""

from __future__ import annotations

import pytest

from databunker.cli import demo_banner


@pytest.mark.parametrize(
    ("scheme", "host", "base"),
    [
        ("http", "127.0.0.1", "http://127.0.0.1:8080"),
        ("http", "0.0.0.0", "http://127.0.0.1:8080"),  # noqa: S104 - every interface
        ("http", "", "http://127.0.0.1:8080"),
        ("http", "::", "http://[::1]:8080"),
        ("http", "::1", "http://[::1]:8080"),
        ("https", "vault.example.org", "https://vault.example.org:8080"),
    ],
)
def test_the_banner_names_an_address_to_open(scheme: str, host: str, base: str) -> None:
    lines = demo_banner(scheme, host, 8080).splitlines()

    assert lines[0] == f"Databunker demo is running at {base}"
    assert f"{base}/v1/" in lines[1]
    assert f"{base}/ " in lines[2]
    assert f"{base}/admin " in lines[3]
