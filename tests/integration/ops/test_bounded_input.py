"""Issue 16, bounded input: every service, as a real process behind uvicorn, caps bodies before reading them
and answers a NUL, a line break or a bidi control in any text parameter with a 422, never a 500.

Requests are written with h11 over a raw socket, so a test controls what is sent when: the headers
of a 10 MiB body and its first KiB only, then the answer must come back before the rest is sent
(not one more byte of the body is needed, and the server closes the connection instead of reading
it); a chunked body that passes the cap is answered without its end ever being sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import h11
import httpx
import pytest

from services.deadlines.settings import DeadlinesSettings
from services.intake.settings import IntakeSettings
from services.notify.settings import NotifySettings
from services.reporting.settings import ReportingSettings
from shared.db import drop_schema
from shared.kafka import delete_topics, ensure_topics
from shared.settings import ServiceSettings
from tests.support.infra import Namespace
from tests.support.notify import roster_document, write_roster
from tests.support.services import ServiceProcess, running_processes, service_env
from tests.testdata import SECONDS_RULES_FILE

MIB = 1024 * 1024
SETTINGS: dict[str, type[ServiceSettings]] = {
    "intake": IntakeSettings,
    "deadlines": DeadlinesSettings,
    "notify": NotifySettings,
    "reporting": ReportingSettings,
}
# Where a body would be read (intake, notify), or a method the route does not take (deadlines and
# reporting only read): without the cap in front, a body here is read before the key is checked.
BODY_ROUTES = {
    "intake": "/v1/reports",
    "deadlines": "/v1/deadlines",
    "notify": f"/v1/alerts/{uuid.uuid4()}/ack",
    "reporting": "/v1/kpis",
}
POLICE = {"Authorization": "Bearer dev-police-key"}


def default_cap(service: str) -> int:
    """The service's own default, as the process runs it (the test's environment sets no cap)."""
    cap = SETTINGS[service].model_fields["max_body_bytes"].default
    assert isinstance(cap, int)
    return cap


@pytest.fixture(scope="module")
def processes(
    kafka: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    """The four services, started once for this module in a namespace of its own (none of these tests
    changes what another sees: every request is refused, or looks up something that does not exist)."""
    space = Namespace.new(kafka, database_url, prefix="bounded")
    asyncio.run(ensure_topics(kafka, space.topics.all(), partitions=3, replication_factor=1))
    tmp = tmp_path_factory.mktemp("bounded")
    env = {
        "DEADLINE_RULES_FILE": str(SECONDS_RULES_FILE),
        "ROSTER_FILE": str(write_roster(tmp / "roster.yaml", roster_document())),
    }
    started = {name: ServiceProcess(name, service_env(space, name, **env), tmp / f"{name}.log") for name in SETTINGS}
    try:
        with running_processes(*started.values()):
            yield started
    finally:
        asyncio.run(_remove(space))


async def _remove(space: Namespace) -> None:
    for schema in space.schemas:
        with contextlib.suppress(Exception):
            await drop_schema(space.database_url, schema)
    with contextlib.suppress(Exception):
        await delete_topics(space.kafka, space.topics.all())


@pytest.fixture(params=sorted(SETTINGS))
def service(request: pytest.FixtureRequest, processes: dict[str, ServiceProcess]) -> ServiceProcess:
    return processes[str(request.param)]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    closed: bool = False  # the server closed the connection after answering


class RawClient:
    """One HTTP/1.1 connection, written with h11: headers and body parts go out exactly when a test says."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h11.Connection(h11.CLIENT)
        self.sent = 0

    def start(self, method: str, path: str, headers: list[tuple[str, str]]) -> None:
        request = h11.Request(method=method, target=path, headers=[("Host", "service"), *headers])
        self.sock.sendall(self.conn.send(request) or b"")

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.conn.send(h11.Data(data=data)) or b"")
        self.sent += len(data)

    def answer(self, within: float) -> Answer:
        """The server's answer (waiting at most `within` seconds for it), and whether it then closed."""
        end = time.monotonic() + within
        answer: Answer | None = None
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no complete answer within {within} s (answer so far: {answer})")
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    continue
                self.conn.receive_data(data)
            elif isinstance(event, h11.Response):
                answer = Answer(event.status_code, {k.decode(): v.decode() for k, v in event.headers})
            elif isinstance(event, h11.Data):
                assert answer is not None
                answer.body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                assert answer is not None
                answer.closed = self._closed(end)
                return answer
            else:
                raise AssertionError(f"unexpected {event!r}")

    def _closed(self, end: float) -> bool:
        if self.conn.their_state is not h11.MUST_CLOSE:
            return False  # a keep-alive answer: the connection stays open for the next request
        self.sock.settimeout(max(0.1, end - time.monotonic()))
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()


def assert_too_large(answer: Answer, cap: int) -> None:
    assert answer.status == 413, answer
    assert answer.headers["content-type"] == "application/problem+json"
    assert f"at most {cap:,} bytes".encode() in answer.body
    # Closed, so the server reads none of the rest: it neither waits for it nor drains it.
    assert answer.headers["connection"] == "close" and answer.closed


def test_a_10_mib_body_without_a_key_is_refused_before_it_is_read(service: ServiceProcess) -> None:
    client = RawClient(service.port)
    try:
        client.start(
            "POST",
            BODY_ROUTES[service.service],
            [("Content-Type", "application/json"), ("Content-Length", str(10 * MIB))],
        )
        client.send(b"x" * 1024)  # the first KiB of ten MiB; the rest only after the answer
        assert_too_large(client.answer(within=5), default_cap(service.service))
        assert client.sent == 1024
        # The rest has nowhere to go: the connection is closed.
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(10 * MIB // 65536):
                client.send(b"x" * 65536)
    finally:
        client.close()


def test_a_chunked_body_past_the_cap_is_refused_as_it_streams(service: ServiceProcess) -> None:
    cap = default_cap(service.service)
    client = RawClient(service.port)
    try:
        client.start(
            "POST",
            BODY_ROUTES[service.service],
            [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
        )
        while client.sent <= cap + 1024:
            client.send(b"x" * 1024)
        # The body never ends (no last chunk is sent): the answer comes from passing the cap.
        assert_too_large(client.answer(within=5), cap)
    finally:
        client.close()


def test_a_chunked_body_within_the_cap_reaches_the_route(service: ServiceProcess) -> None:
    """The body the cap read on the app's behalf is handed on whole: the route answers as to any body."""
    name = service.service
    body = {
        "intake": b'{"action": "dispatched", "occurred_at": "2026-03-01T08:05:00+01:00"}',
        "notify": b'{"by": "vc-a"}',
    }.get(name, b"{}")
    path = {
        "intake": f"/v1/cases/{uuid.uuid4()}/actions",
        "deadlines": "/v1/rules",
        "notify": f"/v1/alerts/{uuid.uuid4()}/ack",
        "reporting": "/v1/kpis?scope=kreds&period=2026",
    }[name]
    method = "POST" if name in ("intake", "notify") else "GET"
    client = RawClient(service.port)
    try:
        client.start(
            method,
            path,
            [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"), *POLICE.items()],
        )
        for start in range(0, len(body), 10):
            client.send(body[start : start + 10])
        client.sock.sendall(client.conn.send(h11.EndOfMessage()) or b"")
        answer = client.answer(within=10)
    finally:
        client.close()
    # intake and notify read the body and look the (unknown) case or alert up; the others ignore it.
    assert answer.status == {"intake": 404, "notify": 404}.get(name, 200), answer


# Every parameter of every API, with a NUL (Postgres refuses a NUL in text: a value that reached a
# query was a 500), a line break and a bidi control: (path, query, the text parameter the 422 must
# name with the character's code point, or None where the parameter's type refuses it anyway).
TEXT_REQUESTS: dict[str, list[tuple[str, dict[str, str], str | None]]] = {
    "intake": [("/v1/cases/{}", {}, None)],
    "deadlines": [
        ("/v1/deadlines", {"kommune": "{}"}, "kommune"),
        ("/v1/deadlines", {"rule": "{}"}, "rule"),
        ("/v1/deadlines", {"state": "{}"}, None),
        ("/v1/deadlines", {"due_before": "{}"}, None),
        ("/v1/deadlines/{}", {}, None),
    ],
    "notify": [
        ("/v1/alerts", {"kommune": "{}"}, "kommune"),
        ("/v1/alerts", {"state": "{}"}, None),
        ("/v1/alerts", {"severity": "{}"}, None),
        ("/v1/alerts/{}", {}, None),
    ],
    "reporting": [
        ("/v1/kpis", {"scope": "{}", "period": "2026"}, "scope"),
        ("/v1/kpis", {"scope": "kreds", "period": "{}"}, "period"),
        ("/v1/kpis", {"scope": "kreds", "period": "2026", "focus_area": "{}"}, "focus_area"),
        ("/v1/council-reports/{}/2026.json", {}, "scope"),
        ("/v1/council-reports/kreds/{}", {}, "document"),
        ("/v1/council-reports/kreds/2026.json", {"focus_area": "{}"}, "focus_area"),
    ],
}
HOSTILE = {"0265\x00": "U+0000", "\x00": "U+0000", "0265\r\nX-Forged: 1": "U+000D", "kreds\u202e": "U+202E"}


def test_text_parameters_with_a_nul_line_break_or_bidi_control_are_a_422_never_a_500(
    service: ServiceProcess,
) -> None:
    with httpx.Client(base_url=service.url, headers=POLICE, timeout=10) as client:
        for path, params, text in TEXT_REQUESTS[service.service]:
            for hostile, point in HOSTILE.items():
                url = path.format(quote(hostile, safe=""))
                r = client.get(url, params={k: v.format(hostile) for k, v in params.items()})
                assert r.status_code == 422, (path, params, hostile, r.status_code, r.text)
                assert r.headers["content-type"] == "application/problem+json"
                if text is not None:
                    assert [(e["field"], point in e["message"]) for e in r.json()["errors"]] == [(text, True)], r.text
        # The ack link's page (no key) is a page for a person: a NUL in its token is "not valid", not a 500.
        if service.service == "notify":
            alert = f"/v1/alerts/{uuid.uuid4()}/ack-link"
            assert client.get(alert, params={"token": "a\x00b"}).status_code == 400
            form = {"content-type": "application/x-www-form-urlencoded"}
            assert client.post(alert, content="token=a%00b%0D%0A", headers=form).status_code == 400
