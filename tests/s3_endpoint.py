"""A real S3 endpoint on this machine: moto's server (the S3 HTTP API on 127.0.0.1), with
credentials in the environment only, as raykd's storage reads them (shared ray-notes §4).

moto >= 5.2.5: 5.2.1 answers CompleteMultipartUpload with the wrong root tag (getmoto/moto#10055),
which pyarrow's S3 client (every parquet write) reports as INTERNAL_FAILURE."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: Any) -> str:
    """A fresh bucket on the endpoint; the environment points pyarrow (and boto3) at it."""
    import boto3

    for key, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "raykd-test-key-id",
                       "AWS_SECRET_ACCESS_KEY": "raykd-test-secret", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    name = "raykd-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name
