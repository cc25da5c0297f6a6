"""`python -m demo [start|stop|status]`: the services in the background, simulated traffic, where to look.

start (default): starts intake, deadlines and reporting (reusing ones a previous demo left running) with the
demo rules (windows of minutes), feeds simulated traffic from the 10 kommuner, writes a summary
of the deadlines per kommune to out/demo-deadlines.json and the kredsråd's council report for this
quarter (PDF and HTML) to out/, and prints where to look. The services
keep running afterwards so you can explore; `make down` (or `python -m demo stop`) stops them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

from demo.simulate import DEMO_WINDOWS, Simulator
from services.deadlines.adapters.rules_file import DEMO_RULES_FILE
from services.reporting.domain.periods import Period
from shared.reference import kommuner

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".cache" / "demo"
OUT = ROOT / "out"
SERVICES = {"intake": 8001, "deadlines": 8002, "reporting": 8004}
OPS_PORTS = {
    "intake": 9001,
    "deadlines": 9002,
    "reporting": 9004,
}  # /metrics, /docs, /asyncapi.json (shared/cli.py serve)
POLICE = {"Authorization": "Bearer dev-police-key"}
COUNCIL = {"Authorization": "Bearer dev-council-key"}


def pid_of(service: str) -> int | None:
    path = RUN_DIR / f"{service}.pid"
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_services() -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"DEADLINE_RULES_FILE": str(DEMO_RULES_FILE), "PYTHONUNBUFFERED": "1"}
    for service, port in SERVICES.items():
        if pid_of(service):
            print(f"[demo] {service} already running (pid {pid_of(service)}); reusing it")
            continue
        log = (RUN_DIR / f"{service}.log").open("ab")
        ports = {f"{service.upper()}_PORT": str(port), f"{service.upper()}_OPS_PORT": str(OPS_PORTS[service])}
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}", "serve"],
            cwd=ROOT, env=env | ports, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `make demo`
        )  # fmt: skip
        (RUN_DIR / f"{service}.pid").write_text(str(proc.pid))
        print(f"[demo] started {service} on http://127.0.0.1:{port} (pid {proc.pid}, log {RUN_DIR / service}.log)")
    for service, port in SERVICES.items():
        wait_ready(service, port)


def wait_ready(service: str, port: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pid_of(service) is None:
            log = RUN_DIR / f"{service}.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
            sys.exit(f"[demo] {service} stopped during start-up; last log lines:\n{tail}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                print(f"[demo] {service} ready")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    sys.exit(f"[demo] {service} not ready after {timeout:.0f}s; see {RUN_DIR / service}.log")


def stop_services() -> None:
    for service in SERVICES:
        pid = pid_of(service)
        if pid is None:
            print(f"[demo] {service}: not running")
            continue
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if pid_of(service) is None:
                break
            time.sleep(0.2)
        print(f"[demo] {service}: stopped")
        (RUN_DIR / f"{service}.pid").unlink(missing_ok=True)


def summarise() -> Path:
    """Deadlines per kommune and state, from the police API, as a file a person can open."""
    items = []
    offset = 0
    while True:
        page = httpx.get(
            "http://127.0.0.1:8002/v1/deadlines", params={"limit": 500, "offset": offset}, headers=POLICE, timeout=10
        ).json()
        items += page["items"]
        offset += page["limit"]
        if offset >= page["total"]:
            break
    table: dict[str, Counter[str]] = {}
    for d in items:
        outcome = "met_late" if d["state"] == "met" and d["late"] else d["state"]
        table.setdefault(kommuner()[d["kommune"]].name, Counter())[outcome] += 1
    OUT.mkdir(exist_ok=True)
    path = OUT / "demo-deadlines.json"
    path.write_text(json.dumps({k: dict(v) for k, v in sorted(table.items())}, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{'kommune':<12}{'pending':>9}{'met':>7}{'late':>7}{'breached':>10}{'cancelled':>11}")
    for name, counts in sorted(table.items()):
        print(
            f"{name:<12}{counts['pending']:>9}{counts['met']:>7}{counts['met_late']:>7}"
            f"{counts['breached']:>10}{counts['cancelled']:>11}"
        )
    return path


def council_reports() -> list[Path]:
    """The kredsråd's report for this quarter, as the reporting service renders it, in out/."""
    period = Period.containing(datetime.now(UTC), "quarter")
    OUT.mkdir(exist_ok=True)
    written = []
    for fmt in ("pdf", "html"):
        response = httpx.get(
            f"http://127.0.0.1:8004/v1/council-reports/kreds/{period}.{fmt}", headers=COUNCIL, timeout=60
        )
        response.raise_for_status()
        path = OUT / f"raadsrapport-kreds-{period}.{fmt}"
        path.write_bytes(response.content)
        written.append(path)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("command", nargs="?", default="start", choices=["start", "stop", "status"])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("DEMO_SECONDS", 90)))
    parser.add_argument("--rate", type=float, default=1.5, help="citizen submissions per second")
    args = parser.parse_args()
    if args.command == "stop":
        stop_services()
        return 0
    if args.command == "status":
        for service in SERVICES:
            print(f"[demo] {service}: " + (f"running (pid {pid_of(service)})" if pid_of(service) else "not running"))
        return 0
    start_services()
    print(f"[demo] simulating {args.seconds:.0f}s of citizens and police in the 10 kommuner ...")
    sim = Simulator("http://127.0.0.1:8001", rate=args.rate, seed=int(time.time()),
                    portal_key="dev-portal-key", police_key="dev-police-key")  # fmt: skip
    stats = asyncio.run(sim.run(args.seconds, DEMO_WINDOWS, drain=45))
    print(f"[demo] sent {stats.reports} reports, {stats.tips} tips, {stats.requests} officer requests, "
          f"{stats.actions} police actions ({stats.refused} refused by validation, {stats.errors} errors)")  # fmt: skip
    summary = summarise()
    pdf, html = council_reports()
    print(f"""
Where to look (the services keep running; `make down` stops them and Kafka and Postgres):
  deadlines summary per kommune   {summary}
  council report (kredsråd)       {pdf}
                                  {html}
  intake API (OpenAPI)            http://127.0.0.1:9001/docs    (the ops port; the API is on 8001)
  deadlines API (OpenAPI)         http://127.0.0.1:9002/docs    (the ops port; the API is on 8002)
  breached deadlines              curl -s -H 'Authorization: Bearer dev-police-key' 'http://127.0.0.1:8002/v1/deadlines?state=breached'
  metrics (what Prometheus scrapes) http://127.0.0.1:9001/metrics  http://127.0.0.1:9002/metrics
  logs                            {RUN_DIR}/*.log
The demo rules ({DEMO_RULES_FILE.name}) scale the real windows down to minutes: 24 h -> 3 min,
"at once" 15 min -> 40 s, so breaches happen while you watch.""")
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
