"""`python -m demo trace <reference | trace id>`: one report's trace from Jaeger's query API, as a tree in the terminal.

The Jaeger that `make up` builds from the Go module proxy has no UI pages (they are not Go), so this is
the view: every span of the trace, by service, indented under its parent, with its start offset and
duration, and where to read the raw trace and the log lines that carry the same `trace_id`.
A reference (MV-XXXX-XXX) is found through intake's span tag `mvsj.reference`; a trace id directly.
A span linked to another trace (a deadline's warning or breach, an alert's escalation: later, in traces
of their own) names the trace it links to; for a reference, the deadlines' warnings and breaches of the
case are listed after the tree, each with the command that shows it.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import httpx

JAEGER_QUERY = os.environ.get("JAEGER_QUERY_URL", f"http://127.0.0.1:{os.environ.get('JAEGER_QUERY_PORT', '16686')}")
_TRACE_ID = re.compile(r"^[0-9a-f]{1,32}$")

Trace = dict[str, Any]


def jaeger_answers() -> bool:
    try:
        return httpx.get(f"{JAEGER_QUERY}/api/services", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def find(reference_or_trace_id: str) -> Trace | None:
    """The trace of a case reference (the one that began with its report) or of a trace id; None if Jaeger has none."""
    wanted = reference_or_trace_id.strip()
    if _TRACE_ID.match(wanted.lower()):
        answer = httpx.get(f"{JAEGER_QUERY}/api/traces/{wanted.lower()}", timeout=10)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        found: list[Trace] = answer.json()["data"] or []
        return found[0] if found else None
    params: dict[str, str | int] = {
        "service": "intake", "tags": json.dumps({"mvsj.reference": wanted}), "lookback": "7d", "limit": 20,
    }  # fmt: skip
    answer = httpx.get(f"{JAEGER_QUERY}/api/traces", params=params, timeout=10)
    answer.raise_for_status()
    traces: list[Trace] = answer.json()["data"] or []
    # The report's own trace is the one that begins with its POST; a police action on it is another.
    traces.sort(key=lambda t: min(s["startTime"] for s in t["spans"]))
    return traces[0] if traces else None


def fired_later(reference: str, report: Trace) -> list[tuple[str, str]]:
    """(trace id, what) of the deadlines' warnings and breaches of a case, oldest first: traces of their own,
    linked to the report's, found by the reference their first span carries."""
    params: dict[str, str | int] = {
        "service": "deadlines", "tags": json.dumps({"mvsj.reference": reference}), "lookback": "7d", "limit": 50,
    }  # fmt: skip
    answer = httpx.get(f"{JAEGER_QUERY}/api/traces", params=params, timeout=10)
    answer.raise_for_status()
    found: list[tuple[int, str, str]] = []
    for trace in answer.json()["data"] or []:
        if trace["traceID"] == report["traceID"]:
            continue
        for span in trace["spans"]:
            if span["operationName"] in ("deadline warning", "deadline breach"):
                rule = next((t["value"] for t in span["tags"] if t["key"] == "mvsj.rule_id"), "?")
                found.append((span["startTime"], str(trace["traceID"]).zfill(32), f"{span['operationName']} ({rule})"))
    return [(trace_id, what) for _, trace_id, what in sorted(found)]


def latest_report() -> str | None:
    """The reference of the latest report Jaeger holds (for the demo's "where to look")."""
    params: dict[str, str | int] = {
        "service": "intake",
        "operation": "intake.report_case",
        "lookback": "1h",
        "limit": 1,
    }
    try:
        answer = httpx.get(f"{JAEGER_QUERY}/api/traces", params=params, timeout=10)
        answer.raise_for_status()
    except httpx.HTTPError:
        return None
    for trace in answer.json()["data"] or []:
        for span in trace["spans"]:
            for tag in span["tags"]:
                if tag["key"] == "mvsj.reference":
                    return str(tag["value"])
    return None


def render(trace: Trace) -> str:
    """The spans as a tree: offset from the trace's start, duration, service, name, and the ids it carries."""
    spans = trace["spans"]
    service = {pid: p["serviceName"] for pid, p in trace["processes"].items()}
    by_id = {s["spanID"]: s for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = next((r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"), None)
        children.setdefault(parent if parent in by_id else None, []).append(span)
    start = min(s["startTime"] for s in spans)
    trace_id = str(trace["traceID"]).zfill(32)
    services = sorted({service[s["processID"]] for s in spans})
    lines = [f"trace {trace_id}: {len(spans)} spans in {', '.join(services)}", ""]

    def walk(span: dict[str, Any], depth: int) -> None:
        tags = {t["key"]: t["value"] for t in span["tags"]}
        ids = " ".join(
            f"{k[5:]}={v}" for k, v in sorted(tags.items()) if k.startswith("mvsj.") and k != "mvsj.consumer"
        )
        failed = "  FAILED" if tags.get("error") or tags.get("otel.status_code") == "ERROR" else ""
        links = "".join(
            f"  (links to trace {str(r['traceID']).zfill(32)})"
            for r in span["references"]
            if r["refType"] == "FOLLOWS_FROM"
        )
        lines.append(
            f"{(span['startTime'] - start) / 1000:>9.1f} ms {span['duration'] / 1000:>8.1f} ms  "
            f"{'  ' * depth}{service[span['processID']]}: {span['operationName']}{failed}  {ids}{links}".rstrip()
        )
        for child in sorted(children.get(span["spanID"], []), key=lambda s: s["startTime"]):
            walk(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: s["startTime"]):
        walk(root, 0)
    lines += [
        "",
        f"raw: curl -s {JAEGER_QUERY}/api/traces/{trace_id}",
        f"its log lines, in every service: grep {trace_id} .cache/demo/*.log",
    ]
    return "\n".join(lines)


def command(argument: str) -> int:
    if not jaeger_answers():
        print(f"no Jaeger answers at {JAEGER_QUERY}: `make up` starts it (deploy/local/jaeger.sh)")
        return 1
    trace = find(argument)
    if trace is None:
        print(f"Jaeger has no trace for {argument!r} (traces are kept in memory until Jaeger stops)")
        return 1
    print(render(trace))
    if not _TRACE_ID.match(argument.strip().lower()):
        later = fired_later(argument.strip(), trace)
        if later:
            print("\nlater, in traces of their own linked to this one:")
            print("\n".join(f"  {what:<50} python -m demo trace {trace_id}" for trace_id, what in later))
    return 0
