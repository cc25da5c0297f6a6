"""`python -m demo trace`: a span linked to another trace says which (a deadline's breach, later, links to
the report's trace)."""

from __future__ import annotations

from demo.trace import render


def test_a_linked_span_names_the_trace_it_links_to() -> None:
    report = "0af7651916cd43dd8448eb211c80319c"
    trace = {
        "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
        "processes": {"p1": {"serviceName": "deadlines"}},
        "spans": [
            {
                "spanID": "00f067aa0ba902b7", "processID": "p1", "operationName": "deadline breach",
                "startTime": 1_000_000, "duration": 1200,
                "tags": [{"key": "mvsj.rule_id", "value": "burglary_home_24h"}],
                "references": [{"refType": "FOLLOWS_FROM", "traceID": report.lstrip("0"), "spanID": "b7ad6b7169203331"}],
            },
            {
                "spanID": "00f067aa0ba902b8", "processID": "p1", "operationName": "publish deadlines.v1",
                "startTime": 1_000_100, "duration": 500, "tags": [],
                "references": [{"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6a3ce929d0e0e4736",
                                "spanID": "00f067aa0ba902b7"}],
            },
        ],
    }  # fmt: skip
    lines = render(trace).splitlines()
    assert lines[2].endswith(f"deadlines: deadline breach  rule_id=burglary_home_24h  (links to trace {report})")
    assert lines[3].endswith("  deadlines: publish deadlines.v1")  # a child, not a link
