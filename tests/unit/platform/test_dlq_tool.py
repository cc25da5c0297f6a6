"""The dlq tool without a broker: its arguments, which entries it chooses, what it prints, what it re-publishes."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from shared.dlq import DeadLetter, dead_letter_message, redrive_message
from shared.dlq_tool import DlqError, Mark, RedriveResult, format_entry, format_list, parse, select

TOPIC = "dlq.deadlines.v1"


def entry(
    offset: int = 7,
    *,
    partition: int = 2,
    value: bytes | None = None,
    error: str = "ZeroDivisionError: a bug",
    headers: list[tuple[str, bytes]] | None = None,
) -> DeadLetter:
    """A DLQ entry as a ReliableConsumer writes it, read back as a record."""
    event_id = uuid.UUID(int=offset)
    original = SimpleNamespace(
        topic="cases.v1",
        partition=4,
        offset=1000 + offset,
        key=b"case-1",
        value=value
        if value is not None
        else json.dumps({"id": str(event_id), "type": "dk.politi.case.reported"}).encode(),
        headers=headers if headers is not None else [("traceparent", b"00-abc-01")],
    )
    message = dead_letter_message(
        dlq_topic=TOPIC, service="deadlines", consumer="cases", record=original, error=error, attempts=5
    )
    record = SimpleNamespace(
        topic=message.topic, partition=partition, offset=offset, key=message.key, value=message.value,
        headers=message.headers,
    )  # fmt: skip
    return DeadLetter.from_record(record)


# --- arguments ---


def test_redrive_takes_exactly_one_way_of_choosing(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["redrive"], ["redrive", "2:7", "--all"], ["redrive", "--reason", "x", "--all"]):
        with pytest.raises(SystemExit) as stopped:
            parse("deadlines", argv)
        assert stopped.value.code == 2
        assert "exactly one of: IDs, --reason TEXT, --all" in capsys.readouterr().err


def test_redrive_arguments_are_read_as_given() -> None:
    args = parse("deadlines", ["redrive", "2:7", "3:1", "--dry-run", "--by", "ops"])
    assert (args.action, args.ids, args.dry_run, args.by, args.all) == ("redrive", ["2:7", "3:1"], True, "ops", False)
    args = parse("deadlines", ["redrive", "--reason", "kommune"])
    assert (args.reason, args.ids, args.dry_run, args.include_unconfirmed) == ("kommune", [], False, False)
    assert parse("deadlines", ["redrive", "--all", "--include-unconfirmed"]).include_unconfirmed


def test_show_needs_an_id_and_list_a_known_action(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["show"], ["purge"], [], ["redrive", "--reason", " "]):
        with pytest.raises(SystemExit):
            parse("deadlines", argv)
    capsys.readouterr()
    assert parse("deadlines", ["list", "--reason", "json"]).reason == "json"
    assert parse("deadlines", ["show", "2:7"]).ids == ["2:7"]


def test_the_service_command_line_offers_dlq(capsys: pytest.CaptureFixture[str]) -> None:
    from shared.cli import command_line
    from shared.settings import ServiceSettings

    with pytest.raises(SystemExit):
        command_line("deadlines", ServiceSettings, lambda s: None, list, argv=["--help"])  # type: ignore[arg-type,return-value]
    assert "dlq list|show|redrive: this service's dead letters (dlq.deadlines.v1)" in " ".join(
        capsys.readouterr().out.split()
    )


# --- choosing ---


def test_an_entry_is_chosen_by_its_dlq_position_or_its_event_id() -> None:
    entries = [entry(1), entry(2), entry(3, partition=0)]
    assert select(entries, TOPIC, ids=["2:2"]) == [entries[1]]
    assert select(entries, TOPIC, ids=[str(uuid.UUID(int=3)), "2:1"]) == [entries[2], entries[0]]
    assert select(entries, TOPIC, ids=["2:1", "2:1"]) == [entries[0]]  # once, however often named


def test_an_unknown_id_stops_the_command_and_says_where_to_look() -> None:
    with pytest.raises(DlqError) as refused:
        select([entry(1)], TOPIC, ids=["2:1", "9:9", "not-an-id"])
    message = str(refused.value)
    assert "no entry 9:9, not-an-id in dlq.deadlines.v1 (1 entries)" in message
    assert "dlq list" in message and "nothing was done" in message


def test_a_reason_is_matched_as_a_substring_in_any_case() -> None:
    bad, other = entry(1, error="invalid event: kommune: not ours"), entry(2)
    assert select([bad, other], TOPIC, reason="KOMMUNE") == [bad]
    assert select([bad, other], TOPIC, everything=True) == [bad, other]
    with pytest.raises(DlqError, match=re.escape("no entry of dlq.deadlines.v1 has a reason containing 'timeout'")):
        select([bad, other], TOPIC, reason="timeout")


# --- what goes back on the bus ---


def test_a_redrive_is_the_original_message_without_the_dlq_headers() -> None:
    dead = entry(5, headers=[("traceparent", b"00-abc-01"), ("dlq.stale", b"from an earlier dead-lettering")])
    message = redrive_message(dead)
    assert (message.topic, message.key) == ("cases.v1", b"case-1")
    assert json.loads(message.value)["id"] == str(uuid.UUID(int=5))
    assert message.headers == [("traceparent", b"00-abc-01")]
    assert dead.original_position == "4@1005" and dead.attempts == "5"


def test_an_entry_without_its_original_topic_cannot_be_redriven() -> None:
    stray = DeadLetter(TOPIC, 0, 1, None, b"x", (("dlq.error", b"?"),))
    with pytest.raises(ValueError, match=re.escape("no dlq.original.topic header")):
        redrive_message(stray)


# --- what the operator reads ---

WHEN = datetime(2026, 3, 1, 8, 15, tzinfo=UTC)


def test_the_list_has_a_row_per_entry_with_its_origin_event_status_and_reason() -> None:
    long_reason = "invalid event: " + "kommune: not one of the district's kommuner; " * 5
    entries = [entry(1), entry(2, error=long_reason), entry(3)]
    marks = {(2, 1): Mark("ops@host", WHEN, WHEN), (2, 3): Mark("ops@host", WHEN, None)}
    lines = format_list(TOPIC, entries, marks)
    assert lines[0] == "dlq.deadlines.v1: 3 entries"
    assert lines[1].split()[:3] == ["ID", "DEAD-LETTERED", "ORIGINAL"]
    first, second, third = lines[2:]
    assert first.split()[:2] == ["2:1", entries[0].failed_at]
    assert "cases.v1 4@1001" in first and "case.reported" in first and str(uuid.UUID(int=1)) in first
    assert first.split()[7] == "2026-03-01T08:15:00Z" and first.endswith("ZeroDivisionError: a bug")
    assert second.split()[7] == "-" and second.endswith("…") and len(second[second.index("invalid event") :]) == 80
    assert third.split()[7] == "unconfirmed"
    assert format_list(TOPIC, [], {}) == ["dlq.deadlines.v1: no entries"]
    assert format_list(TOPIC, entries[:1], {})[0] == "dlq.deadlines.v1: 1 entry"


def test_show_prints_the_envelope_as_json_and_says_when_a_value_is_not_json() -> None:
    shown = format_entry(entry(1), Mark("ops@host", WHEN, WHEN))
    assert "  original       cases.v1 partition 4 offset 1001" in shown
    assert "  redriven       redriven 2026-03-01T08:15:00Z by ops@host" in shown
    assert "    traceparent: 00-abc-01" in shown and "    dlq.error: ZeroDivisionError: a bug" in shown
    assert '      "type": "dk.politi.case.reported"' in shown  # pretty-printed
    garbled = format_entry(entry(2, value=b'{"specversion": "1.0", "id": '), None)
    assert "  redriven       no" in garbled
    assert "not a JSON object" in garbled and '{"specversion": "1.0", "id":' in garbled


def test_the_summary_names_what_was_skipped_and_why() -> None:
    result = RedriveResult(chosen=3, sent=1)
    result.already.append((entry(1), Mark("ops@host", WHEN, WHEN)))
    result.unconfirmed.append((entry(2), Mark("ops@host", WHEN, None)))
    lines = result.summary(TOPIC, dry_run=False)
    assert lines[0] == "redriven 1 of 3 chosen entries of dlq.deadlines.v1"
    assert "skipped 1 already redriven" in lines[1] and "2:1 redriven 2026-03-01T08:15:00Z by ops@host" in lines[2]
    assert "--include-unconfirmed" in lines[3] and str(uuid.UUID(int=2)) in lines[4]
    assert RedriveResult(chosen=2, would=2).summary(TOPIC, dry_run=True) == [
        "dry run: would redrive 2 of 2 chosen entries of dlq.deadlines.v1"
    ]
