"""`python -m demo [start|stop|status|trace REF]`: the whole system on this machine, simulated traffic, where to look.

start (default; `make demo` runs it after `make up`): migrates each service's schema, starts a local
webhook receiver and an SMTP sink that print what notify and Alertmanager send, Alertmanager (routing
Prometheus's alerts to them by severity) and Prometheus (scraping every service's ops port), then the
four services with the demo rules (windows of minutes) and the demo roster and policy; feeds simulated
traffic from the 10 kommuner (demo/simulate.py) while printing progress; reporting e-mails the
kredsråd's report of last quarter to the SMTP sink 20 s after the start (the demo's delivery plan);
writes a summary of the deadlines per kommune and the kredsråd's council report for this quarter
(PDF and HTML) to out/;
prints where to look and keeps everything running until Ctrl-C, which stops everything the demo
started. `python -m demo stop` (also run by `make down`) does the same from another terminal;
`--detach` leaves the services running after the summary. The services send their traces to the
Jaeger that `make up` runs (OTEL_EXPORTER_OTLP_ENDPOINT); `python -m demo trace <reference or trace
id>` prints one report's trace across the four services (demo/trace.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from demo import trace
from demo.simulate import DEMO_WINDOWS, LOCAL, SPEED, VOLUME, OfficerTokens, Simulator, describe_rates
from demo.smtp_sink import ATTACHED
from services.deadlines.adapters.rules_file import DEMO_RULES_FILE
from services.reporting.adapters.delivery_plan_file import DEFAULT_PLAN_FILE
from services.reporting.domain.periods import Period
from shared.reference import kommuner
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".cache" / "demo"
OUT = ROOT / "out"
HOST = "127.0.0.1"
# API port, ops port (/metrics, /docs, /asyncapi.json: shared/cli.py serve) per service.
ALL_SERVICES = {"intake": (8001, 9001), "deadlines": (8002, 9002), "notify": (8003, 9003), "reporting": (8004, 9004)}
WEBHOOK_PORT = int(os.environ.get("DEMO_WEBHOOK_PORT", "8090"))
SMTP_PORT = int(os.environ.get("DEMO_SMTP_PORT", "1025"))  # notify's default NOTIFY_SMTP_PORT
PROMETHEUS_PORT = int(os.environ.get("DEMO_PROMETHEUS_PORT", "9090"))
# Alertmanager's own default; Kafka's controllers keep off it (deploy/local/kafka.sh: 9098).
ALERTMANAGER_PORT = int(os.environ.get("DEMO_ALERTMANAGER_PORT", "9093"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
HELPERS = ("prometheus", "alertmanager", "webhook", "smtp")  # stopped in this order, after the services
POLICE = {"Authorization": "Bearer dev-police-key"}
COUNCIL = {"Authorization": "Bearer dev-council-key"}
# The demo's roster and alert policy for notify: timeouts of seconds to match the demo rules.
DEMO_ROSTER_FILE = ROOT / "demo" / "notify-roster.yaml"
DEMO_POLICY_FILE = ROOT / "demo" / "notify-policy.yaml"
ECHO_HEADERS = {"webhook": "[webhook] signature ok", "smtp": "[e-mail] to"}  # the first line of a printed delivery
ALERTMANAGER_HEADER = "[alertmanager] to"  # Alertmanager's pages in webhook.log: few, so all are printed
SHOWN_IN_FULL = 4  # webhook deliveries and e-mails printed whole; the rest are counted (all are in the logs)


def services() -> dict[str, tuple[int, int]]:
    """The services this checkout has (notify joins when its room exists)."""
    return {name: ports for name, ports in ALL_SERVICES.items() if (ROOT / "services" / name / "__main__.py").exists()}


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def alive(pid: int) -> bool:
    """Whether the process runs; a child of this demo that exited is reaped here (a zombie is not alive)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # started by another `python -m demo` (e.g. `demo stop` from another terminal)
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


STARTED: dict[str, subprocess.Popen[bytes]] = {}  # by this process: their state is known without guessing


def pid_of(name: str) -> int | None:
    if name in STARTED:
        return STARTED[name].pid if STARTED[name].poll() is None else None
    try:
        pid = int((RUN_DIR / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    # A pid file left by a crashed demo may name a pid the system has since given to another program.
    expected = name if name in ("prometheus", "alertmanager") else ("demo." if name in HELPERS else f"services.{name}")
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return pid  # no /proc (not Linux): trust the pid file
    return pid if expected in cmdline else None


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def launch(name: str, argv: list[str], env: dict[str, str], ports: tuple[int, ...] = ()) -> int:
    """Starts a child in its own session (Ctrl-C reaches only the demo, which stops it in order)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    running = pid_of(name)
    if running:
        say(f"{name} already running (pid {running}); reusing it")
        return running
    taken = [p for p in ports if port_taken(p)]
    if taken:
        stop_all()
        sys.exit(f"[demo] port {taken[0]} for {name} is taken by another program; is another demo running "
                 "(`python -m demo status`)? The DEMO_*_PORT variables move the helpers' ports.")  # fmt: skip
    log = (RUN_DIR / f"{name}.log").open("ab")
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    STARTED[name] = proc
    (RUN_DIR / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def wait_for(name: str, url: str, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pid_of(name) is None:
            log = RUN_DIR / f"{name}.log"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
            stop_all()
            sys.exit(f"[demo] {name} stopped during start-up; last log lines:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    stop_all()
    sys.exit(f"[demo] {name} not ready after {timeout:.0f}s; see {RUN_DIR / name}.log")


def webhook_secret() -> str:
    """The receiver's Standard Webhooks secret, made once per machine and kept in .cache (never committed)."""
    path = RUN_DIR / "webhook-secret"
    if not path.exists():
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text("whsec_" + base64.b64encode(os.urandom(24)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def alertmanager_token() -> str:
    """The bearer token Alertmanager sends to the webhook receiver, made once per machine (never committed)."""
    path = RUN_DIR / "alertmanager-token"  # where deploy/alertmanager/alertmanager.yml's credentials_file points
    if not path.exists():
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(os.urandom(24)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def alertmanager_binary() -> str | None:
    """Debian names it prometheus-alertmanager; upstream's tarball alertmanager."""
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def alertmanager_config() -> Path:
    """deploy/alertmanager/alertmanager.yml with the demo's webhook and SMTP ports and the token's full path."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    config["global"]["smtp_smarthost"] = f"{HOST}:{SMTP_PORT}"
    alertmanager_token()
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"http://{HOST}:{WEBHOOK_PORT}/alertmanager/{receiver['name']}"
            hook["http_config"]["authorization"]["credentials_file"] = str(RUN_DIR / "alertmanager-token")
    path = RUN_DIR / "alertmanager.yml"
    header = "# Written by `python -m demo` from deploy/alertmanager/alertmanager.yml.\n"
    path.write_text(header + yaml.safe_dump(config))
    return path


def kafka_controller_holds(port: int) -> bool:
    """Whether the Kafka node `make up` runs was started with its controller on `port` (9093 before it moved)."""
    props = ROOT / ".cache" / "kafka" / "server.properties"
    return props.exists() and f"CONTROLLER://127.0.0.1:{port}" in props.read_text()


def prometheus_config(running: dict[str, tuple[int, int]], alerting: bool) -> Path:
    """deploy/prometheus/prometheus.yml with a target per running service's ops port and the alert rules."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["rule_files"] = [str(ROOT / "deploy" / "prometheus" / "alerts.yml")]
    if alerting:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"{HOST}:{ALERTMANAGER_PORT}"]}]}]}
    else:
        config.pop("alerting", None)
    # The file's jobs (their `service` target label and honor_labels, which keeps the metrics' own
    # `service` rather than adding an exported_service), on the ports the demo's services run on.
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    config["scrape_configs"] = [
        jobs[name] | {"static_configs": [{"targets": [f"{HOST}:{ops}"], "labels": {"service": name}}]}
        for name, (_, ops) in running.items()
    ]
    path = RUN_DIR / "prometheus.yml"
    path.write_text("# Written by `python -m demo` from deploy/prometheus/prometheus.yml.\n" + yaml.safe_dump(config))
    return path


def start_helpers(running: dict[str, tuple[int, int]]) -> None:
    env = os.environ | {
        "PYTHONUNBUFFERED": "1",
        "DEMO_WEBHOOK_SECRET": webhook_secret(),
        "DEMO_ALERTMANAGER_TOKEN": alertmanager_token(),
    }
    alertmanager = alertmanager_binary()
    if "notify" in running or "reporting" in running or alertmanager:
        launch("webhook", [sys.executable, "-m", "demo.webhook_receiver", "--port", str(WEBHOOK_PORT)], env,
               ports=(WEBHOOK_PORT,))  # fmt: skip
        wait_for("webhook", f"http://{HOST}:{WEBHOOK_PORT}/stats")
        say(f"webhook receiver on http://{HOST}:{WEBHOOK_PORT}/ (checks Standard Webhooks signatures)")
        launch("smtp", [sys.executable, "-m", "demo.smtp_sink", "--port", str(SMTP_PORT)], env, ports=(SMTP_PORT,))
        say(f"SMTP sink on {HOST}:{SMTP_PORT} (prints the e-mails notify, reporting and Alertmanager send)")
    if alertmanager:
        taken = pid_of("alertmanager") is None and port_taken(ALERTMANAGER_PORT)
        if taken and kafka_controller_holds(ALERTMANAGER_PORT):
            stop_all()
            sys.exit(f"[demo] port {ALERTMANAGER_PORT} for Alertmanager is held by the Kafka controller of the broker "
                     "`make up` started before the controller moved to 9098. It moves when the broker next starts "
                     "(`make down && make up`, which stops Kafka and Postgres for everyone on this machine); or run "
                     "the demo with DEMO_ALERTMANAGER_PORT set to a free port.")  # fmt: skip
        launch("alertmanager", [alertmanager, f"--config.file={alertmanager_config()}",
                                f"--web.listen-address={HOST}:{ALERTMANAGER_PORT}",
                                f"--web.external-url=http://{HOST}:{ALERTMANAGER_PORT}",
                                f"--storage.path={RUN_DIR / 'alertmanager-data'}",
                                "--cluster.listen-address="],  # one instance: no gossip port (9094)
               env, ports=(ALERTMANAGER_PORT,))  # fmt: skip
        wait_for("alertmanager", f"http://{HOST}:{ALERTMANAGER_PORT}/-/ready")
        say(f"Alertmanager on http://{HOST}:{ALERTMANAGER_PORT} (deploy/alertmanager/alertmanager.yml): critical "
            "alerts to the webhook receiver and by e-mail, warnings by e-mail, info on its page only")  # fmt: skip
    else:
        say("WARNING: no Alertmanager binary (make up installs Debian's prometheus-alertmanager); alerts reach nobody")
    if shutil.which("prometheus"):
        config = prometheus_config(running, alerting=alertmanager is not None)
        launch("prometheus", ["prometheus", f"--config.file={config}", f"--web.listen-address={HOST}:{PROMETHEUS_PORT}",
                              f"--storage.tsdb.path={RUN_DIR / 'prometheus-data'}", "--storage.tsdb.retention.time=1d"],
               env, ports=(PROMETHEUS_PORT,))  # fmt: skip
        wait_for("prometheus", f"http://{HOST}:{PROMETHEUS_PORT}/-/ready")
        say(f"Prometheus on http://{HOST}:{PROMETHEUS_PORT}, scraping {', '.join(running)} on their ops ports")
    else:
        say("WARNING: no prometheus binary (make up installs Debian's package); running without it")


# The demo's council delivery plan (written at start): the development plan plus the kredsråd's report of
# the previous quarter, once, a few seconds after the start, so one delivery reaches the SMTP sink.
DEMO_DELIVERY_PLAN = RUN_DIR / "council-delivery-plan.yaml"
DEMO_DELIVERY_AFTER_SECONDS = 20
DEMO_DELIVERY_RECIPIENTS = ["kredsraad-sekretariat@politi.example", "borgmester-roskilde@kommune.example"]


def write_delivery_plan(now: datetime) -> str:
    """services/reporting's development plan with one more entry: the kredsråd's last quarter, soon.

    Its id carries the start time, so each run of the demo sends its own (a delivery goes out once
    per entry and period, and the demo's database outlives a run). Returns the entry's id.
    """
    plan = yaml.safe_load(DEFAULT_PLAN_FILE.read_text(encoding="utf-8"))
    entry_id = f"kredsraad-demo-{now.astimezone(LOCAL):%Y%m%d-%H%M%S}"
    plan["deliveries"].append(
        {
            "id": entry_id,
            "council": "kreds",
            "recipients": DEMO_DELIVERY_RECIPIENTS,
            "report": {"scope": "kreds", "period": "quarter"},
            "when": {
                "period": str(Period.containing(now, "quarter").previous()),
                "at": (now + timedelta(seconds=DEMO_DELIVERY_AFTER_SECONDS)).astimezone(LOCAL).isoformat(),
            },
        }
    )
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    header = f"# Written by `python -m demo` from {DEFAULT_PLAN_FILE.relative_to(ROOT)}, with the demo's entry last.\n"
    DEMO_DELIVERY_PLAN.write_text(header + yaml.safe_dump(plan, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return entry_id


def council_emails(entry_id: str) -> list[list[str]]:
    """The e-mails of the demo's delivery as the SMTP sink printed them (first line and attachment line each)."""
    log = RUN_DIR / "smtp.log"
    if not log.exists():
        return []
    found: list[list[str]] = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(ECHO_HEADERS["smtp"]):
            found.append([line])
        elif found and ATTACHED in line:
            found[-1].append(line.strip())
    return [mail for mail in found if any(entry_id in line for line in mail)]


def service_env() -> dict[str, str]:
    env = os.environ | {
        "ENVIRONMENT": os.environ.get("ENVIRONMENT", "development"),  # the development keys; make sets it too
        "DEADLINE_RULES_FILE": str(DEMO_RULES_FILE),
        "ROSTER_FILE": str(DEMO_ROSTER_FILE),
        "ALERT_POLICY_FILE": str(DEMO_POLICY_FILE),
        "DEMO_WEBHOOK_SECRET": webhook_secret(),  # the demo roster's secret_env
        "NOTIFY_SMTP_HOST": HOST,
        "NOTIFY_SMTP_PORT": str(SMTP_PORT),
        "NOTIFY_PUBLIC_URL": f"http://{HOST}:8003",
        "REPORTING_PUBLIC_URL": f"http://{HOST}:8004",
        # Retries in seconds, not minutes, so a failed channel falls back while the demo runs.
        "NOTIFY_RETRY_CAP_SECONDS": "10",
        "COUNCIL_DELIVERY_PLAN_FILE": str(DEMO_DELIVERY_PLAN),
        "REPORTING_SMTP_HOST": HOST,
        "REPORTING_SMTP_PORT": str(SMTP_PORT),
        "REPORTING_DELIVERY_RETRY_BASE_SECONDS": "5",
        "PYTHONUNBUFFERED": "1",
    }
    if tracing_to() is not None and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = str(tracing_to())
    return env


def tracing_to() -> str | None:
    """Where the services send their traces: the endpoint set, else `make up`'s Jaeger when it answers."""
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
    if trace.jaeger_answers():
        return f"http://{HOST}:{os.environ.get('JAEGER_OTLP_PORT', '4318')}"
    return None


def migrate(running: dict[str, tuple[int, int]]) -> None:
    """Each service's migrations, as `make migrate` runs them (idempotent; a new checkout's notify included)."""
    for name in running:
        done = subprocess.run([sys.executable, "-m", f"services.{name}", "migrate"], cwd=ROOT, env=service_env(),
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"[demo] migrating {name} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        say(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else f"{name}: migrated")


def start_services(running: dict[str, tuple[int, int]]) -> None:
    env = service_env()
    for name, (port, ops) in running.items():
        ports = {f"{name.upper()}_PORT": str(port), f"{name.upper()}_OPS_PORT": str(ops)}
        pid = launch(name, [sys.executable, "-m", f"services.{name}", "serve"], env | ports, ports=(port, ops))
        say(f"started {name} on http://{HOST}:{port} (pid {pid}, log {RUN_DIR / name}.log)")
    for name, (port, _) in running.items():
        wait_for(name, f"http://{HOST}:{port}/readyz")
        say(f"{name} ready")


def stop_all() -> None:
    """Stops what the demo started, services first (they finish their in-flight work), by pid file."""
    for name in [*ALL_SERVICES, *HELPERS]:
        pid = pid_of(name)
        if pid is None:
            (RUN_DIR / f"{name}.pid").unlink(missing_ok=True)
            continue
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if pid_of(name) is None:
                break
            time.sleep(0.2)
        else:
            os.kill(pid, signal.SIGKILL)
        say(f"{name}: stopped")
        (RUN_DIR / f"{name}.pid").unlink(missing_ok=True)


class Echo:
    """Prints the first few deliveries the webhook receiver and the SMTP sink log, whole, and counts all of them."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.follow, daemon=True)

    def start(self) -> Echo:
        self.thread.start()
        return self

    def follow(self) -> None:
        """One thread reads both logs, so a printed block is never cut by another's lines."""
        positions = {name: self.end_of(name) for name in ECHO_HEADERS}
        while not self.stop.is_set():
            for name in ECHO_HEADERS:
                positions[name] = self.read(name, positions[name])
            time.sleep(0.5)

    @staticmethod
    def end_of(name: str) -> int:
        path = RUN_DIR / f"{name}.log"
        return path.stat().st_size if path.exists() else 0

    def read(self, name: str, position: int) -> int:
        path = RUN_DIR / f"{name}.log"
        if not path.exists():
            return position
        with path.open("rb") as log:
            log.seek(position)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a block being written is read on the next round
        block: list[str] = []
        for line in complete.decode(errors="replace").splitlines():
            if line.startswith(ALERTMANAGER_HEADER):
                self.show(name, block)
                block = [line]
                self.counts["alertmanager"] += 1
            elif line.startswith(ECHO_HEADERS[name]) or line.startswith("[webhook] REJECTED"):
                self.show(name, block)
                block = [line]
                self.counts[name if not line.startswith("[webhook] REJECTED") else "rejected"] += 1
            elif block:
                block.append(line)
        self.show(name, block)
        return position + len(complete)

    def show(self, name: str, block: list[str]) -> None:
        if block and block[0].startswith(ALERTMANAGER_HEADER):
            print("\n".join("   " + line for line in block), flush=True)
        elif block and (self.counts[name] <= SHOWN_IN_FULL or "REJECTED" in block[0]):
            print("\n".join("   " + line for line in block), flush=True)
            if self.counts[name] == SHOWN_IN_FULL:
                print(f"   (further {'webhooks' if name == 'webhook' else 'e-mails'} are counted below; "
                      f"all are in {RUN_DIR.relative_to(ROOT)}/{name}.log)", flush=True)  # fmt: skip


async def progress_of(running: dict[str, tuple[int, int]], echo: Echo) -> str:
    """Counts from the services' own APIs, appended to the simulator's progress line."""
    parts = []
    async with httpx.AsyncClient(timeout=5, headers=POLICE) as client:
        try:
            states = {}
            for state in ("pending", "met", "breached"):
                page = await client.get(f"http://{HOST}:8002/v1/deadlines", params={"state": state, "limit": 1})
                states[state] = page.json()["total"]
            parts.append(f"deadlines {states['pending']} open, {states['met']} met, {states['breached']} breached")
            if "notify" in running:
                alerts = {}
                for state in ("open", "escalated", "acknowledged", "resolved"):
                    page = await client.get(f"http://{HOST}:8003/v1/alerts", params={"state": state, "limit": 1})
                    alerts[state] = page.json()["total"]
                parts.append(
                    f"alerts {alerts['open']} open, {alerts['escalated']} escalated, "
                    f"{alerts['acknowledged']} acked, {alerts['resolved']} resolved; "
                    f"{echo.counts['webhook']} webhooks, {echo.counts['smtp']} e-mails"
                )
        except (httpx.HTTPError, KeyError, ValueError) as error:
            parts.append(f"(counts unavailable: {error!r})")
    return "\n       " + "; ".join(parts)


def summarise() -> Path:
    """Deadlines per kommune and state, from the police API, as a file a person can open."""
    items = []
    offset = 0
    while True:
        page = httpx.get(
            f"http://{HOST}:8002/v1/deadlines", params={"limit": 500, "offset": offset}, headers=POLICE, timeout=10
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
    """The kredsråd's report for this quarter, as the reporting service renders it over HTTP, in out/."""
    period = Period.containing(datetime.now(UTC), "quarter")
    OUT.mkdir(exist_ok=True)
    written = []
    for fmt in ("pdf", "html"):
        response = httpx.get(
            f"http://{HOST}:8004/v1/council-reports/kreds/{period}.{fmt}", headers=COUNCIL, timeout=120
        )
        response.raise_for_status()
        path = OUT / f"raadsrapport-kreds-{period}.{fmt}"
        path.write_bytes(response.content)
        written.append(path)
    return written


def console_served() -> bool:
    try:
        return httpx.get(f"http://{HOST}:8003/console", timeout=5).status_code != 404
    except httpx.HTTPError:
        return False


def where_to_look(running: dict[str, tuple[int, int]], summary: Path, reports: list[Path], echo: Echo,
                  delivery: str = "") -> str:  # fmt: skip
    rel = [str(p.relative_to(ROOT)) for p in (summary, *reports)]
    lines = ["", "Where to look:"]
    if delivery:
        indent = " " * 31
        lines.append(f"  council report by e-mail     delivery plan entry {delivery} ({DEMO_DELIVERY_PLAN.name}):")
        mails = council_emails(delivery)
        lines += [indent + line.removeprefix("[e-mail] ") for mail in mails for line in mail]
        if not mails:
            lines.append(f"{indent}not in the SMTP sink yet; see {RUN_DIR.relative_to(ROOT)}/reporting.log")
    if "notify" in running:
        if console_served():
            lines += [
                f"  duty-officer console         http://{HOST}:8003/console",
                "                               sign in at the identity provider as a development user (password",
                "                               dev-<username>): vc-anne (vagtchef, every alert), lb-roskilde-1",
                "                               (lokalbetjent, Roskilde's alerts); the demo's acks are theirs too;",
                "                               an alert's 'Vis anmeldelse' shows the citizen's report (logged)",
                f"  follow-up list               http://{HOST}:8003/console/opfoelgning",
                "                               lb-roskilde-1 (a lokalbetjent) sees his burglary victims; 'Vis",
                "                               telefon' is logged too (the log: dpo, GET /v1/cases/<id>/access-log)",
            ]
        else:
            lines.append("  duty-officer console         not in this checkout yet; the alerts API below has the same")
        lines += [
            f"  alerts (police API)          curl -s -H 'Authorization: Bearer dev-police-key' http://{HOST}:8003/v1/alerts",
            f"  identity provider (Keycloak) {CommonSettings().oidc_issuer_url}/account  (development users:",
            "                               README 'Identity provider'; admin console /admin: admin / dev-admin)",
            f"  webhooks received (verified) {echo.counts['webhook']}, e-mails received {echo.counts['smtp']}: "
            f"{RUN_DIR.relative_to(ROOT)}/webhook.log, smtp.log",
        ]
    lines += [f"  council report (kredsråd)    {rel[1]}", f"                               {rel[2]}"]
    if "reporting" in running:
        quarter = Period.containing(datetime.now(UTC), "quarter")
        lines += [
            f"  council pages (rådssider)    http://{HOST}:8004/raad/rapport?scope=kreds&period={quarter}",
            "                               sign in as raad-0265 (Roskilde's lokalråd: Roskilde and the kreds),",
            "                               kredsraad or vc-anne (every kommune); password dev-<username>",
            f"  public figures (no sign-in)  http://{HOST}:8004/offentlig/politigarantier  (.csv and .json beside it)",
        ]
    lines += [f"  deadlines per kommune        {rel[0]}"]
    for name, (port, ops) in running.items():
        lines.append(f"  {name + ' API docs (OpenAPI)':<29}http://{HOST}:{ops}/docs   (API on :{port})")
    if pid_of("prometheus"):
        lines.append(f"  Prometheus (targets, alerts) http://{HOST}:{PROMETHEUS_PORT}/targets  /alerts")
    if pid_of("alertmanager"):
        lines += [
            f"  Alertmanager (who is told)   http://{HOST}:{ALERTMANAGER_PORT}/#/alerts   "
            f"(amtool --alertmanager.url=http://{HOST}:{ALERTMANAGER_PORT} alert)",
            f"                               {echo.counts['alertmanager']} pages so far; critical -> webhook.log "
            "and smtp.log, warning -> smtp.log; stop a service to see ServiceDown arrive after a minute",
        ]
    if tracing_to() is not None and trace.jaeger_answers():
        example = trace.latest_report() or "MV-XXXX-XXX"
        lines += [
            f"  traces (Jaeger's query API)  {trace.JAEGER_QUERY}/api/traces?service=intake&limit=20",
            f"  one report's trace           python -m demo trace {example}",
            "                               (a case reference, or a trace_id from the logs)",
            "                               every span from the portal's POST to the webhook, in the four services",
        ]
    lines.append(
        f"  logs                         {RUN_DIR.relative_to(ROOT)}/*.log   (grep a trace_id for one report's lines)"
    )
    lines.append(
        f"The demo rules ({DEMO_RULES_FILE.name}) and the demo roster and policy (demo/notify-*.yaml) scale\n"
        "the real windows to minutes: 24 h -> 3 min, 'at once' 15 min -> 40 s, acks 5-30 min -> 20-40 s,\n"
        "so breaches and escalations happen while you watch."
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    running = services()
    if "notify" not in running:
        say("this checkout has no notify service yet: no alerts, webhooks or e-mails in this run")
    delivery = write_delivery_plan(datetime.now(UTC))
    migrate(running)
    start_helpers(running)
    traces = tracing_to()
    say(f"traces go to {traces} (Jaeger)" if traces else "WARNING: no Jaeger answers (make up starts it): no traces")
    start_services(running)
    say(f"reporting e-mails the kredsråd's report of last quarter in about {DEMO_DELIVERY_AFTER_SECONDS}s "
        f"(delivery plan entry {delivery}, {DEMO_DELIVERY_PLAN.relative_to(ROOT)})")  # fmt: skip
    echo = Echo().start()
    say(f"the district's expected submissions per real day: {describe_rates()}")
    say(
        f"simulating {args.seconds:.0f}s of citizens and police in the 10 kommuner from 07:00: 1 s = {SPEED / 60:.0f} "
        f"simulated minutes, {args.volume:g}x the real volume (demo settings, see demo/simulate.py)"
    )
    # The simulated day starts at 07:00 local time, so two minutes cover the day's rhythm (morning
    # traffic, office-hour requests, evening burglaries) and the drain runs into the night.
    morning = datetime.now(LOCAL).replace(hour=7, minute=0, second=0, microsecond=0)
    sim = Simulator(f"http://{HOST}:8001", seed=int(time.time()), portal_key="dev-portal-key", start=morning,
                    police_key="dev-police-key", volume=args.volume,
                    notify=f"http://{HOST}:8003" if "notify" in running else None,
                    officer_tokens=OfficerTokens(CommonSettings().oidc_issuer_url))  # fmt: skip

    async def progress() -> str:
        return await progress_of(running, echo)

    stats = asyncio.run(sim.run(args.seconds, DEMO_WINDOWS, drain=args.drain, progress=progress))
    say(
        f"sent {stats.reports} reports, {stats.tips} tips, {stats.requests} Bestil-en-betjent requests, "
        f"{stats.actions} police actions ({stats.later_visits} later visits asked for, {stats.late_on_purpose} late "
        f"on purpose), {stats.acks} acks ({stats.late_acks} late); {stats.refused} refused, {stats.errors} errors"
    )
    summary = summarise()
    say("asking reporting for the kredsråd's council report (PDF and HTML) ...")
    reports = council_reports()
    echo.stop.set()
    print(where_to_look(running, summary, reports, echo, delivery))
    say(f"the demo took {time.monotonic() - started:.0f}s")
    return 1 if stats.errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("command", nargs="?", default="start", choices=["start", "stop", "status", "trace"])
    parser.add_argument("reference", nargs="?", help="trace: a case reference (MV-XXXX-XXX) or a trace id")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("DEMO_SECONDS", 120)))
    parser.add_argument("--drain", type=float, default=float(os.environ.get("DEMO_DRAIN_SECONDS", 90)))
    parser.add_argument("--volume", type=float, default=VOLUME, help="times the district's real volume")
    parser.add_argument("--detach", action="store_true", help="leave everything running after the summary")
    args = parser.parse_args()
    if args.command == "trace":
        if not args.reference:
            parser.error("trace needs a case reference (MV-XXXX-XXX) or a trace id")
        return trace.command(args.reference)
    if args.command == "stop":
        stop_all()
        return 0
    if args.command == "status":
        for name in [*ALL_SERVICES, *HELPERS]:
            pid = pid_of(name)
            say(f"{name}: " + (f"running (pid {pid})" if pid else "not running"))
        return 0

    def on_signal(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (a background job)
    try:
        code = run(args)
        if args.detach:
            say("left running; `python -m demo stop` or `make down` stops it")
            return code
        say("everything keeps running so you can look around; Ctrl-C stops everything the demo started")
        # Until Ctrl-C, or until `python -m demo stop` / `make down` stopped everything from elsewhere.
        while any(pid_of(name) for name in [*ALL_SERVICES, *HELPERS]):
            time.sleep(2)
        say("the demo's processes were stopped from elsewhere; done")
        return 0
    except KeyboardInterrupt:
        print()
        say("stopping everything the demo started ...")
        stop_all()
        return 0


if __name__ == "__main__":
    sys.exit(main())
