"""Real receivers for notify's channels: an HTTP webhook endpoint (uvicorn) and an SMTP server (aiosmtpd).

Both run in their own threads, so they answer while a test blocks (waiting for a process, say).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.services import free_port


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()
    status: int


@dataclass
class Plan:
    """How a path answers: `statuses` are used up one per request (then 200); `delay` before answering."""

    statuses: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    always: tuple[int, dict[str, str]] | None = None
    delay: float = 0.0


class WebhookReceiver:
    """POST /<anything>: records the request and answers as planned for that path (200 by default)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.hits: list[Hit] = []
        self.plans: dict[str, Plan] = {}
        self.first_hit = threading.Event()
        self.arrivals: list[tuple[str, str, float]] = []  # (path, webhook-id, monotonic) as requests come in
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["POST", "GET"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    async def _endpoint(self, request: Request) -> Response:
        import asyncio

        path = "/" + request.path_params["path"]
        body = await request.body()
        plan = self.plans.get(path, Plan())
        with self._lock:
            self.arrivals.append((path, request.headers.get("webhook-id", ""), time.monotonic()))
        self.first_hit.set()
        if plan.delay:
            await asyncio.sleep(plan.delay)
        with self._lock:
            if plan.statuses:
                status, headers = plan.statuses.pop(0)
            elif plan.always is not None:
                status, headers = plan.always
            else:
                status, headers = 200, {}
            self.hits.append(Hit(path, {k.lower(): v for k, v in request.headers.items()}, body, time.monotonic(),
                                 status))  # fmt: skip
        return Response(status_code=status, headers=headers)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        end = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > end:
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def to(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def delivered(self, path: str) -> list[Hit]:
        return [h for h in self.to(path) if 200 <= h.status < 300]

    def delivered_all(self) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if 200 <= h.status < 300]


class _Collect:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.sink.lock:
            self.sink.rcpts.append((address, time.monotonic()))
        if address in self.sink.refuse:
            return self.sink.refuse[address]
        if self.sink.rcpt_delay.get(address):
            await asyncio.sleep(self.sink.rcpt_delay[address])  # a server slow to accept the recipient
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.sink.lock:
            self.sink.messages.append((list(envelope.rcpt_tos), message))
            self.sink.arrivals.append((str(message["Message-ID"]), time.monotonic()))
        delay = max((self.sink.data_delay.get(r, 0.0) for r in envelope.rcpt_tos), default=0.0)
        if delay:
            # The server has the message (kept above, as a real one has it queued) but is slow to say so:
            # a client that dies or gives up meanwhile does not know it was delivered.
            await asyncio.sleep(delay)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.quit_delay:
            import asyncio

            await asyncio.sleep(self.sink.quit_delay)  # a server slow to say goodbye, after it has taken the mail
        return "221 Bye"


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free port that keeps every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.arrivals: list[tuple[str, float]] = []  # (Message-ID, monotonic) as messages are accepted
        self.quit_delay = 0.0  # seconds before QUIT is answered
        self.rcpt_delay: dict[str, float] = {}  # seconds before RCPT TO:<address> is answered
        self.data_delay: dict[str, float] = {}  # seconds before the 250 to a message for the address (kept already)
        self.refuse: dict[str, str] = {}  # address -> the answer refusing it at RCPT, e.g. "550 5.1.1 no such user"
        self.rcpts: list[tuple[str, float]] = []  # (address, monotonic) as RCPT commands arrive
        self.lock = threading.Lock()
        self._controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port)
        self.stopped = False

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self._controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for rcpts, m in self.messages if address in rcpts]
