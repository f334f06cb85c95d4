"""Bounded network checks: can a TCP connection to a host be opened within a few seconds?

Libraries that talk to a server (Ray's GCS client, the Hugging Face hub client, an object store's
SDK) retry a missing server for tens of seconds to minutes before they fail. raykd asks the
question once, with a short timeout, before it hands the work to them, so "nothing listens there"
is one line in seconds. Name resolution runs in a daemon thread, because `getaddrinfo` itself has
no timeout.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlsplit

CONNECT_TIMEOUT_S = 3.0
"""How long a check waits for a connection (name resolution included)."""


def unreachable(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when a TCP connection to host:port opens within `timeout` seconds; else why not
    (one short phrase for an error message)."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except socket.gaierror as exc:
            outcome.append(f"cannot resolve {host} ({exc.strerror or exc})")
        except OSError as exc:
            outcome.append(exc.strerror or type(exc).__name__)

    worker = threading.Thread(target=attempt, daemon=True, name="raykd-connect-check")
    worker.start()
    worker.join(timeout + 0.5)
    if not outcome:
        return f"no answer within {timeout:g} s"
    return outcome[0]


def host_port(text: str, default_port: int | None = None) -> tuple[str, int] | None:
    """(host, port) of `HOST:PORT`, `[IPv6]:PORT` or `scheme://HOST[:PORT][/...]`; None when
    `text` names no host, or no port and there is no default. ValueError for a port that is not
    a number in 1..65535."""
    parts = urlsplit(text if "://" in text else f"//{text}")
    host = parts.hostname
    port = parts.port  # ValueError when not a number or out of range
    if port is None:
        port = default_port
    if not host or port is None:
        return None
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return host, port


def object_store_endpoint(uri: str) -> tuple[str, int] | None:
    """The server an `s3://` or `gs://` URI is read from (as pyarrow connects: `AWS_ENDPOINT_URL`
    for a non-AWS S3, `STORAGE_EMULATOR_HOST` for a GCS emulator); None for anything else."""
    if uri.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            return host_port(endpoint, 443 if endpoint.startswith("https") else 80)
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return (f"s3.{region}.amazonaws.com" if region else "s3.amazonaws.com"), 443
    if uri.startswith(("gs://", "gcs://")):
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            return host_port(emulator, 443 if emulator.startswith("https") else 80)
        return "storage.googleapis.com", 443
    return None
