"""API keys rotated while intake runs as a real process: no restart, an expired key is a 401 that says so.

The citizen portal gets a new key beside its old one, switches, and the old one is removed; a
malformed file written in between changes nothing. The process is the same one throughout.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from shared.auth import hash_key
from shared.key_file import CHECK_EVERY_SECONDS
from tests.integration.intake.conftest import report
from tests.support.infra import Namespace
from tests.support.services import ServiceProcess, running_processes, service_env

OLD, NEW, EXPIRED, POLICE = (secrets.token_urlsafe(32) for _ in range(4))
LINES = {
    "old": f"  - {{name: portal, role: portal, key_id: portal-old, sha256: {hash_key(OLD)}, expires: 2099-12-31}}\n",
    "new": f"  - {{name: portal, role: portal, key_id: portal-new, sha256: {hash_key(NEW)}, expires: 2100-06-30}}\n",
    "expired": f"  - {{name: portal, role: portal, key_id: portal-2019, sha256: {hash_key(EXPIRED)}, expires: 2020-01-01}}\n",
    "police": f"  - {{name: politiets-systemer, role: police, sha256: {hash_key(POLICE)}}}\n",
}
WITHIN = CHECK_EVERY_SECONDS * 5  # a bound on "the next check", not a timing


def write_keys(path: Path, *names: str) -> None:
    fresh = path.with_suffix(".new")
    fresh.write_text("keys:\n" + "".join(LINES[n] for n in names))
    os.replace(fresh, path)


def submit(intake: ServiceProcess, key: str) -> httpx.Response:
    return httpx.post(
        f"{intake.url}/v1/reports",
        json=report(),
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )


def metric(intake: ServiceProcess, series: str) -> float | None:
    text = httpx.get(f"{intake.ops_url}/metrics", timeout=5).text
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def eventually(check: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + WITHIN
    while not check():
        assert time.monotonic() < end, f"not within {WITHIN} s: {what}"
        time.sleep(0.2)


def test_a_key_is_rotated_without_a_restart_and_an_expired_key_is_refused_saying_so(
    ns: Namespace, tmp_path: Path
) -> None:
    keys = tmp_path / "api-keys.yaml"
    write_keys(keys, "old", "expired", "police")
    intake = ServiceProcess("intake", service_env(ns, "intake", API_KEYS_FILE=str(keys)), tmp_path / "intake.log")
    with running_processes(intake):
        assert intake.proc is not None
        pid = intake.proc.pid
        assert submit(intake, OLD).status_code == 202

        expired = submit(intake, EXPIRED)
        assert expired.status_code == 401 and expired.headers["content-type"] == "application/problem+json"
        assert expired.json()["detail"] == "This API key expired on 2020-01-01; ask the police district for a new one."
        assert EXPIRED not in expired.text
        assert submit(intake, NEW).json()["detail"] == "The API key is not valid."

        # 1-3: the new key goes in beside the old one; both work while the portal switches.
        write_keys(keys, "old", "new", "expired", "police")
        eventually(lambda: submit(intake, NEW).status_code == 202, "the added key is accepted")
        assert submit(intake, OLD).status_code == 202
        # Its last day ends at midnight Danish summer time.
        new_until = datetime(2100, 6, 30, 22, 0, tzinfo=UTC).timestamp()
        assert metric(intake, 'api_key_expiry_timestamp_seconds{client="portal",key_id="portal-new"}') == new_until

        # A slip while editing: the services keep the keys they have, and /metrics says the file is refused.
        keys.write_text("keys:\n" + LINES["new"] + LINES["police"].replace("role: police", "role: admin"))
        eventually(
            lambda: submit(intake, OLD).status_code == 202 and metric(intake, "api_keys_file_rejected") == 1.0,
            "the malformed file is refused and the old keys kept",
        )
        assert metric(intake, "api_keys_reload_errors_total") == 1.0

        # 5: the portal uses the new key; the old line goes.
        write_keys(keys, "new", "expired", "police")
        eventually(lambda: submit(intake, OLD).status_code == 401, "the removed key is refused")
        assert submit(intake, OLD).json()["detail"] == "The API key is not valid."
        assert submit(intake, NEW).status_code == 202
        assert submit(intake, POLICE).status_code == 403  # a police key still identifies, with its own role
        assert metric(intake, "api_keys_file_rejected") == 0.0
        assert metric(intake, 'api_key_expiry_timestamp_seconds{client="portal",key_id="portal-old"}') is None

        assert intake.proc.poll() is None and intake.proc.pid == pid  # never restarted
    log = intake.log.read_text()
    assert "API_KEYS_FILE re-read: 4 keys of 2 clients; added: portal-new; removed: none" in log
    assert "role must be one of" in log and "the 4 keys read before stay in use" in log
    assert "API key portal-2019 of portal expired on 2020-01-01 and is refused" in log
    for key in (OLD, NEW, EXPIRED, POLICE):
        assert key not in log
