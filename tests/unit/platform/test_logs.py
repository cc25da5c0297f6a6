"""Log lines: JSON or console, every line with the ids of its request or event, never a person's data."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.http import install_problem_handlers, install_request_context
from shared.logs import (
    MASK,
    bind_log_context,
    configure,
    current_log_context,
    log_context,
)
from shared.settings import CommonSettings

# Recognisable personal data, as a careless caller might pass it in `extra`.
PERSONAL = {
    "phone": "+4520304050",
    "email": "mette.testesen@example.dk",
    "address": "Strandvejen 12",
    "description": "Terrassedøren brudt op",
    "contact": {"name": "Mette Hansen-Testesen", "phone": "20 30 40 50"},
    "citizen_name": "Mette Hansen-Testesen",
    "report": {"text": "smykkeskrinet er væk", "kommune": "0265"},
}
PERSONAL_VALUES = ("+4520304050", "mette.testesen", "Strandvejen", "Terrassedøren", "Mette", "20 30 40 50", "smykke")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the service would print, configured as shared/cli.py does (JSON unless a test reconfigures)."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    touched = [logging.getLogger(name) for name in ("", "aiokafka", "uvicorn.access", "httpx")]
    levels = [logger.level for logger in touched]
    out = io.StringIO()
    configure("intake", "DEBUG", "json", stream=out)
    yield out
    root.handlers[:] = handlers
    for logger, level in zip(touched, levels, strict=True):
        logger.setLevel(level)


def parsed(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def service_lines(out: io.StringIO) -> list[dict[str, object]]:
    """The lines the service wrote (not the test client's own)."""
    return [line for line in parsed(out) if line["logger"] != "httpx"]


def test_a_json_line_has_time_level_service_logger_message_the_ids_and_the_extras(lines: io.StringIO) -> None:
    case_id = uuid.uuid4()
    with log_context(trace_id=TRACE, request_id="00f067aa0ba902b7", case_id=case_id):
        logging.getLogger("services.intake.handlers").info("case accepted", extra={"reference": "K7-2F", "n": 3})
    [line] = parsed(lines)
    assert list(line)[:5] == ["time", "level", "service", "logger", "message"]
    assert line["level"] == "INFO" and line["service"] == "intake" and line["logger"] == "services.intake.handlers"
    assert line["message"] == "case accepted"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", str(line["time"]))
    assert line["trace_id"] == TRACE and line["request_id"] == "00f067aa0ba902b7"
    assert line["case_id"] == str(case_id)
    assert line["reference"] == "K7-2F" and line["n"] == 3  # extras keep their JSON type


def test_every_line_is_one_json_object_tracebacks_and_danish_letters_included(lines: io.StringIO) -> None:
    log = logging.getLogger("shared.consumer")
    try:
        raise RuntimeError("første forsøg\nanden linje")
    except RuntimeError:
        log.exception("attempt %d failed", 1)
    [line] = parsed(lines)  # one line, however many the traceback has
    assert "RuntimeError: første forsøg" in str(line["exc_info"])
    assert "første" in lines.getvalue()  # not \u00f8-escaped: a person can grep the raw line


def test_the_context_nests_and_an_explicit_extra_wins(lines: io.StringIO) -> None:
    log = logging.getLogger("t")
    with log_context(trace_id=TRACE, case_id="c-1"):
        with log_context(event_id="e-1", alert_id=None):
            bind_log_context(deadline_id="d-1")
            log.info("inner")
            log.info("explicit", extra={"case_id": "c-2"})
        log.info("outer")
    log.info("outside")
    inner, explicit, outer, outside = parsed(lines)
    assert {k: inner[k] for k in ("trace_id", "event_id", "case_id", "deadline_id")} == {
        "trace_id": TRACE, "event_id": "e-1", "case_id": "c-1", "deadline_id": "d-1"
    }  # fmt: skip
    assert "alert_id" not in inner  # None means not known: left out
    assert explicit["case_id"] == "c-2"
    assert outer["case_id"] == "c-1" and "event_id" not in outer and "deadline_id" not in outer
    assert not {"trace_id", "case_id"} & set(outside)
    assert current_log_context() == {}


async def test_tasks_started_inside_a_context_carry_it_and_others_do_not(lines: io.StringIO) -> None:
    log = logging.getLogger("t")

    async def work(name: str) -> None:
        await asyncio.sleep(0)
        log.info(name)

    with log_context(case_id="c-1"):
        first = asyncio.create_task(work("inside"))
    second = asyncio.create_task(work("outside"))
    await asyncio.gather(first, second)
    by_message = {line["message"]: line for line in parsed(lines)}
    assert by_message["inside"]["case_id"] == "c-1" and "case_id" not in by_message["outside"]


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_personal_fields_in_extra_are_masked_at_any_depth(lines: io.StringIO, log_format: str) -> None:
    configure("intake", "DEBUG", log_format, stream=lines)  # type: ignore[arg-type]
    logging.getLogger("careless").warning("a careless line", extra=PERSONAL | {"kommune": "0265"})
    text = lines.getvalue()
    for value in PERSONAL_VALUES:
        assert value not in text, f"{value!r} reached the {log_format} log"
    assert "0265" in text  # what is not personal stays readable
    if log_format == "json":
        [line] = parsed(lines)
        assert {line[k] for k in ("phone", "email", "address", "description", "contact", "citizen_name")} == {MASK}
        assert line["report"] == {"text": MASK, "kommune": "0265"}


def test_the_console_line_reads_in_a_terminal(lines: io.StringIO) -> None:
    configure("deadlines", "INFO", "console", stream=lines)
    with log_context(event_id="e-1", case_id="c-1"):
        logging.getLogger("shared.consumer").warning("deadlines-cases: attempt %d failed", 2, extra={"attempts": 2})
        try:
            raise ValueError("bad")
        except ValueError:
            logging.getLogger("shared.consumer").exception("giving up")
    first, second, *traceback = lines.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING deadlines shared\.consumer: deadlines-cases: attempt 2 failed"
        r" event_id=e-1 case_id=c-1 attempts=2",
        first,
    )
    assert second.endswith("ERROR deadlines shared.consumer: giving up event_id=e-1 case_id=c-1")
    assert traceback[0] == "Traceback (most recent call last):" and traceback[-1] == "ValueError: bad"
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)


@pytest.mark.parametrize(
    ("environment", "log_format", "expected"),
    [
        ("", None, "json"),
        ("production", None, "json"),
        ("development", None, "console"),
        ("development", "json", "json"),
        ("production", "Console", "console"),
    ],
)
def test_log_format_defaults_to_json_except_in_development(
    monkeypatch: pytest.MonkeyPatch, environment: str, log_format: str | None, expected: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", environment)
    if log_format is None:
        monkeypatch.delenv("LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("LOG_FORMAT", log_format)
    assert CommonSettings().logs_as == expected


def test_an_unknown_log_format_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match=r"log_format|LOG_FORMAT"):
        CommonSettings()


# --- The HTTP edge ---------------------------------------------------------------------------------


def edge_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter()
    log = logging.getLogger("services.test.http")

    @router.get("/v1/cases/{case_id}")
    async def case(case_id: str, q: str = "") -> dict[str, str]:
        log.info("looked up")
        return {"case_id": case_id}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.include_router(router)
    install_problem_handlers(app)
    install_request_context(app)
    return app


async def call(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        return await client.get(path, headers=headers)


async def test_a_request_s_lines_carry_the_trace_id_of_its_traceparent(lines: io.StringIO) -> None:
    case_id = str(uuid.uuid4())
    answer = await call(edge_app(), f"/v1/cases/{case_id}?q=mette.testesen@example.dk",
                        {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})  # fmt: skip
    assert answer.status_code == 200
    route_line, access = service_lines(lines)
    assert route_line["message"] == "looked up" and route_line["trace_id"] == TRACE
    assert access["request_id"] == route_line["request_id"] and re.fullmatch(r"[0-9a-f]{16}", str(access["request_id"]))
    assert access["logger"] == "shared.http.access" and access["trace_id"] == TRACE
    assert access["message"] == "GET /v1/cases/{case_id} 200"
    assert access["route"] == "/v1/cases/{case_id}" and access["status"] == 200 and access["case_id"] == case_id
    assert "mette" not in lines.getvalue()  # the query string is never logged


async def test_without_traceparent_each_request_gets_a_new_trace_id_and_an_unhandled_error_keeps_it(
    lines: io.StringIO,
) -> None:
    app = edge_app()
    await call(app, "/v1/cases/1", {"traceparent": "not-a-traceparent"})
    assert (await call(app, "/boom")).status_code == 500
    first, _, error, access = service_lines(lines)
    assert re.fullmatch(r"[0-9a-f]{32}", str(first["trace_id"]))
    assert str(error["message"]).startswith("unhandled error") and error["trace_id"] == access["trace_id"]
    assert error["trace_id"] != first["trace_id"]
    assert access["message"] == "GET /boom 500"


async def test_probes_are_debug_lines(lines: io.StringIO) -> None:
    configure("intake", "INFO", "json", stream=lines)
    await call(edge_app(), "/healthz")  # a 404 here, but the path is a probe's
    await call(edge_app(), "/nowhere")
    [access] = service_lines(lines)
    assert access["message"] == "GET unmatched 404"


def test_the_http_client_s_request_lines_are_off(lines: io.StringIO) -> None:
    # They name the URL: a webhook's may carry a token or point at a person's own endpoint.
    logging.getLogger("httpx").info("HTTP Request: POST https://hooks.example/T0k3n")
    assert lines.getvalue() == ""
