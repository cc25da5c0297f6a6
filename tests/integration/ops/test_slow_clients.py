"""Hardening 6: partial headers, a short body or an idle connection do not hold a connection open.

intake runs as a real process with read timeouts of 1 s; each case speaks raw HTTP over a socket
and asserts the server closes the connection within 3 s (3x the timeout: a bound, not a timing).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.infra import Namespace
from tests.support.services import ServiceProcess, service_env

TIMEOUT = 1.0
BOUND = 3 * TIMEOUT


@pytest.fixture
def intake(ns: Namespace, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = service_env(
        ns, "intake",
        INTAKE_HTTP_HEADER_TIMEOUT_SECONDS=str(TIMEOUT),
        INTAKE_HTTP_BODY_TIMEOUT_SECONDS=str(TIMEOUT),
        INTAKE_HTTP_KEEP_ALIVE_SECONDS=str(int(TIMEOUT)),
    )  # fmt: skip
    process = ServiceProcess("intake", env, tmp_path / "intake.log")
    process.migrate()
    process.start()
    try:
        process.wait_ready(timeout=60)
        yield process
    finally:
        process.stop()


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing, or None if it still holds the connection after `seconds`."""
    end = time.monotonic() + seconds
    received = b""
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.mark.parametrize("port", ["api", "ops"])
def test_a_silent_client_is_closed(intake: ServiceProcess, port: str) -> None:
    with connect(intake.port if port == "api" else intake.ops_port) as sock:
        assert closed_within(sock, BOUND) == b""


def test_partial_headers_are_closed(intake: ServiceProcess) -> None:
    with connect(intake.port) as sock:
        sock.sendall(b"POST /v1/reports HTTP/1.1\r\nHost: intake\r\nContent-Type: application/json\r\n")
        assert closed_within(sock, BOUND) == b""


def test_headers_trickled_a_byte_at_a_time_are_closed(intake: ServiceProcess) -> None:
    """The deadline runs from the first byte: new bytes do not push it back."""
    request = b"GET /healthz HTTP/1.1\r\nHost: intake\r\nX-Padding: " + b"a" * 200
    with connect(intake.port) as sock:
        end = time.monotonic() + BOUND
        for byte in request:
            if time.monotonic() > end:
                break
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break  # closed: what the test wants
            time.sleep(0.1)
        else:
            pytest.fail("sent every byte without the server closing")
        assert closed_within(sock, BOUND) is not None


def test_a_body_shorter_than_its_content_length_is_closed(intake: ServiceProcess) -> None:
    with connect(intake.port) as sock:
        sock.sendall(
            b"POST /v1/reports HTTP/1.1\r\nHost: intake\r\nAuthorization: Bearer dev-portal-key\r\n"
            b"Content-Type: application/json\r\nIdempotency-Key: slow-body-1\r\nContent-Length: 100\r\n\r\n"
            b'{"category"'
        )
        assert closed_within(sock, BOUND) is not None
    # The service is fine afterwards and nothing was stored half-read.
    with connect(intake.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: intake\r\nConnection: close\r\n\r\n")
        assert (closed_within(sock, BOUND) or b"").startswith(b"HTTP/1.1 200 OK")


def test_an_idle_keep_alive_connection_is_closed(intake: ServiceProcess) -> None:
    with connect(intake.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: intake\r\n\r\n")
        answer = closed_within(sock, BOUND)
        assert answer is not None and answer.startswith(b"HTTP/1.1 200 OK")


def test_a_client_that_sends_in_time_is_served_on_one_connection(intake: ServiceProcess) -> None:
    with connect(intake.port) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: intake\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"status":"ok"}'):
                chunk = sock.recv(4096)
                assert chunk, f"closed after {answer!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 OK")
            time.sleep(TIMEOUT / 2)  # within keep-alive: the same connection serves the next one
