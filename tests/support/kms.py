"""An AWS-compatible KMS on 127.0.0.1: moto in server mode, reached through boto3 as a real
endpoint (``AWS_ENDPOINT_URL``), with fake credentials."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from support.server import free_port

REGION = "eu-west-1"


@contextmanager
def kms_server() -> Iterator[dict[str, str]]:
    """Run the server; yields the environment that points AWS clients at it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    finally:
        server.stop()


def kms_client(env: dict[str, str]) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def new_kms_key(env: dict[str, str]) -> str:
    """The ARN of a new symmetric KMS key."""
    return str(kms_client(env).create_key(Description="databunker test")["KeyMetadata"]["Arn"])
