"""A local mail server for the demo (aiosmtpd): accepts every e-mail notify and reporting send and prints it.

`python -m demo.smtp_sink --port 1025`. Nothing is relayed anywhere; the sink stands in for the
police mail system, so the demo shows what a lokalbetjent or the vagtcentral would read.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import signal
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller

BODY_LINES = 6  # enough to show the message; the whole text is in notify's audit trail
ATTACHED = "vedhæftet:"


class PrintMessages:
    def __init__(self, out: Any = sys.stdout) -> None:
        self.out = out
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content().strip().splitlines() if body is not None else []
        self.count += 1
        lines = [
            f"[e-mail] to {', '.join(envelope.rcpt_tos)}: {message['Subject']}",
            *[f"         {line}" for line in text[:BODY_LINES]],
            # A council report arrives as a PDF: its name, type and size (the file itself stays in the mail).
            *[
                f"         {ATTACHED} {part.get_filename()} ({part.get_content_type()},"
                f" {len(part.get_content()) // 1024} kB), Message-ID {str(message['Message-ID']).strip()}"
                for part in message.iter_attachments()
            ],
        ]
        print("\n".join(lines), file=self.out, flush=True)
        return "250 OK"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.smtp_sink", description=__doc__)
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    controller = Controller(PrintMessages(), hostname=args.host, port=args.port)
    controller.start()
    print(f"[e-mail] SMTP sink listening on {args.host}:{args.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
