"""Dead-letter entries keep the original message and say where it came from and why it failed."""

from __future__ import annotations

from types import SimpleNamespace

from shared.dlq import dead_letter_message, headers_dict


def test_dead_letter_keeps_original_and_adds_provenance() -> None:
    record = SimpleNamespace(
        topic="cases.v1",
        partition=4,
        offset=1234,
        key=b"case-1",
        value=b"{not json",
        headers=[("trace", b"abc")],
    )
    message = dead_letter_message(
        dlq_topic="dlq.deadlines.v1", service="deadlines", consumer="cases", record=record,
        error=ValueError("bad json"), attempts=1,
    )  # fmt: skip
    assert (message.topic, message.key, message.value) == ("dlq.deadlines.v1", b"case-1", b"{not json")
    headers = headers_dict(message.headers)
    assert headers["trace"] == "abc"
    assert headers["dlq.original.topic"] == "cases.v1"
    assert headers["dlq.original.partition"] == "4"
    assert headers["dlq.original.offset"] == "1234"
    assert headers["dlq.error"] == "ValueError: bad json"
    assert headers["dlq.service"] == "deadlines"


def test_database_errors_worth_waiting_out_are_told_apart_from_bugs() -> None:
    import asyncpg

    from shared.db import is_transient

    def pg(sqlstate: str) -> asyncpg.PostgresError:
        error = asyncpg.PostgresError("x")
        # asyncpg gives each error class its SQLSTATE (a ClassVar in the stubs); one instance carries any code here.
        error.sqlstate = sqlstate  # type: ignore[misc]
        return error

    # disk full, out of memory, query cancelled, admin shutdown, read-only during failover, deadlock
    for state in ("53100", "53200", "57014", "57P01", "25006", "40P01", "08006"):
        assert is_transient(pg(state)), state
    assert is_transient(ConnectionRefusedError()) and is_transient(TimeoutError())
    # a bad query, a constraint the data breaks, a type error: retrying cannot help
    for state in ("42601", "23505", "22P02"):
        assert not is_transient(pg(state)), state
    assert not is_transient(ZeroDivisionError())
