"""Hardening 10: metrics, AsyncAPI and OpenAPI on the ops port only; health and readiness on both.

Both services run as real processes through `shared.cli.serve`, the one mechanism every service
gets by calling `command_line`: neither bootstrap has a line about the ops port.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.infra import Namespace
from tests.support.services import ServiceProcess, service_env
from tests.testdata import SECONDS_RULES_FILE

OPS_ONLY = ("/metrics", "/asyncapi.json", "/docs", "/openapi.json")
BOTH = ("/healthz", "/readyz")


@pytest.mark.parametrize("service", ["intake", "deadlines"])
def test_ops_endpoints_answer_on_the_ops_port_only(ns: Namespace, tmp_path: Path, service: str) -> None:
    env = service_env(ns, service, DEADLINE_RULES_FILE=str(SECONDS_RULES_FILE))
    process = ServiceProcess(service, env, tmp_path / f"{service}.log")
    process.migrate()
    process.start()
    try:
        process.wait_ready(timeout=60)
        for path in OPS_ONLY:
            public = httpx.get(process.url + path, timeout=5)
            assert public.status_code == 404, (path, public.status_code)
            assert public.headers["content-type"] == "application/problem+json"
            assert httpx.get(process.ops_url + path, timeout=5).status_code == 200, path
        for path in BOTH:
            assert httpx.get(process.url + path, timeout=5).status_code == 200, path
            assert httpx.get(process.ops_url + path, timeout=5).status_code == 200, path
        metrics = httpx.get(process.ops_url + "/metrics", timeout=5).text
        assert "outbox_backlog_events" in metrics and "clock_skew_seconds" in metrics
        # The public OpenAPI document (read on the ops port) lists no ops-only path.
        paths = httpx.get(process.ops_url + "/openapi.json", timeout=5).json()["paths"]
        assert not set(paths) & set(OPS_ONLY) and set(BOTH) <= set(paths)
        # The API itself stays on the public port: a police key reaches it there, not on the ops port.
        api = "/v1/deadlines" if service == "deadlines" else "/v1/cases/00000000-0000-4000-8000-000000000000"
        police = {"Authorization": "Bearer dev-police-key"}
        assert httpx.get(process.url + api, headers=police, timeout=5).status_code in (200, 404)
        assert httpx.get(process.ops_url + api, headers=police, timeout=5).status_code == 404
    finally:
        process.stop()
