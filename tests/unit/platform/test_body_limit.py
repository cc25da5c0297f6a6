"""The body cap (shared/http.py BodySizeLimit) as the server meets it: what it reads, when it answers.

Raw ASGI, so each test sees every `receive` the cap makes: a body over a declared Content-Length is
refused without one, a chunked body is refused at the message that passes the cap and never read
further. tests/unit/platform/test_edge.py shows every service has it; tests/integration/ops/
test_body_limits.py shows it over real sockets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.types import Message, Receive, Scope, Send

from shared.http import BodySizeLimit

CAP = 250


def scope(*headers: tuple[bytes, bytes]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/things", "headers": list(headers), "query_string": b""}


class Client:
    """The server's side of one request: the body's messages as the client sends them, and the answer."""

    def __init__(self, chunks: Iterator[bytes] | list[bytes]) -> None:
        self.chunks = iter(chunks)
        self.reads = 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        self.reads += 1
        chunk = next(self.chunks, None)
        if chunk is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.sent[0]["headers"]}

    def body(self) -> dict[str, object]:
        answer: dict[str, object] = json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))
        return answer


class Finite(Client):
    """A client that sends `chunks` and ends its body."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__(chunks)
        self.left = len(chunks)

    async def receive(self) -> Message:
        message = await super().receive()
        if message["type"] == "http.request":
            self.left -= 1
            message["more_body"] = self.left > 0
        return message


def endless() -> Iterator[bytes]:
    while True:
        yield b"x" * 100


async def unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the app was called with a body over the cap")


class Recording:
    """An app that reads the whole body (unless `reads` is False) as Starlette does, and answers 200."""

    def __init__(self, *, reads: bool = True) -> None:
        self.reads = reads
        self.body = b""
        self.messages: list[Message] = []
        self.receive: Receive | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.receive = receive
        more = self.reads
        while more:
            message = await receive()
            self.messages.append(message)
            self.body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(self.body)).encode()})


async def test_a_declared_length_over_the_cap_is_413_before_a_byte_is_read() -> None:
    client = Client(endless())
    await BodySizeLimit(unreachable, max_bytes=CAP)(
        scope((b"content-length", b"10485760")), client.receive, client.send
    )
    assert client.reads == 0
    assert client.status == 413
    assert client.headers["content-type"] == "application/problem+json"
    # The server closes the connection after the answer instead of reading (and dropping) the rest.
    assert client.headers["connection"] == "close"
    body = client.body()
    assert body["status"] == 413 and body["type"] == "https://politi.example/problems/too-large"
    assert body["detail"] == "The body may be at most 250 bytes."


async def test_a_declared_length_of_exactly_the_cap_is_taken() -> None:
    app = Recording()
    client = Finite([b"x" * 200, b"x" * 50])
    await BodySizeLimit(app, max_bytes=CAP)(scope((b"content-length", b"250")), client.receive, client.send)
    assert client.status == 200 and app.body == b"x" * CAP


async def test_a_chunked_body_is_refused_at_the_message_that_passes_the_cap_and_read_no_further() -> None:
    client = Client(endless())  # a client that would send for ever
    await BodySizeLimit(unreachable, max_bytes=CAP)(
        scope((b"transfer-encoding", b"chunked")), client.receive, client.send
    )
    assert client.reads == 3  # 100, 200, 300 bytes: the third passes 250
    assert client.status == 413 and client.headers["connection"] == "close"


async def test_a_false_small_content_length_is_counted_too() -> None:
    """A server that trusted the header would pass on more than it says; the count does not trust it."""
    client = Client(endless())
    await BodySizeLimit(unreachable, max_bytes=CAP)(scope((b"content-length", b"10")), client.receive, client.send)
    assert client.reads == 3 and client.status == 413


async def test_a_body_within_the_cap_reaches_the_app_whole_in_one_message() -> None:
    app = Recording()
    client = Finite([b"a" * 100, b"b" * 100])
    await BodySizeLimit(app, max_bytes=CAP)(scope((b"transfer-encoding", b"chunked")), client.receive, client.send)
    assert client.status == 200
    assert app.messages == [{"type": "http.request", "body": b"a" * 100 + b"b" * 100, "more_body": False}]
    # After the body the app hears the server again (a streaming answer waits for the disconnect).
    assert app.receive is not None
    assert await app.receive() == {"type": "http.disconnect"}


async def test_a_request_without_a_body_goes_to_the_app_untouched() -> None:
    app = Recording(reads=False)
    client = Client([])
    await BodySizeLimit(app, max_bytes=CAP)(scope(), client.receive, client.send)
    assert client.status == 200 and client.reads == 0
    assert app.receive == client.receive


async def test_a_client_gone_in_the_middle_of_its_body_reaches_no_app_and_counts_as_499() -> None:
    client = Client([b"x" * 100])  # then disconnects
    await BodySizeLimit(unreachable, max_bytes=CAP)(
        scope((b"transfer-encoding", b"chunked")), client.receive, client.send
    )
    assert client.status == 499


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
async def test_other_than_http_passes_through(kind: str) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    client = Client([])
    await BodySizeLimit(app, max_bytes=CAP)({"type": kind, "headers": []}, client.receive, client.send)
    assert seen == [kind]
