"""Sends one process's Kafka connections through a TcpProxy, so a test can freeze "the broker" for it alone.

A single-node broker advertises its own address: a proxy given as the bootstrap server would
only see the first metadata request, and produce and fetch would go straight to the broker.
So every connection aiokafka opens in the process goes to the proxy instead; the bytes are
passed on untouched. Other tests on the shared broker see nothing of a freeze.

python -m tests.support.kafka_route PROXY_PORT MODULE [ARGS...]
    runs `python -m MODULE ARGS...` (a service) with its Kafka behind the proxy.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiokafka.client
import aiokafka.conn

from tests.support.tcp_proxy import TcpProxy

_ORIGINAL = aiokafka.conn.create_conn


def route_kafka_to(proxy_port: int) -> Callable[[], None]:
    """From now on this process reaches Kafka only through 127.0.0.1:`proxy_port`; returns the undo."""

    async def via_proxy(host: str, port: int, **options: Any) -> Any:
        return await _ORIGINAL("127.0.0.1", proxy_port, **options)

    aiokafka.client.create_conn = via_proxy

    def undo() -> None:
        aiokafka.client.create_conn = _ORIGINAL

    return undo


def proxy_for(bootstrap: str) -> TcpProxy:
    """A proxy (not started) to the one broker of `bootstrap` (host:port)."""
    host, _, port = bootstrap.rpartition(":")
    return TcpProxy(host, int(port))


def client_connections_to(port: int) -> int:
    """Established TCP connections to 127.0.0.1:`port` on this machine (the clients' side only)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state = fields[2], fields[3]
        if state == "01" and int(remote.split(":")[1], 16) == port:
            count += 1
    return count


if __name__ == "__main__":
    port, module, *args = sys.argv[1:]
    route_kafka_to(int(port))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
