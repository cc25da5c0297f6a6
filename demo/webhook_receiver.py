"""A local webhook endpoint for the demo: verifies each delivery's Standard Webhooks signature and prints it.

`python -m demo.webhook_receiver --port 8090` with the endpoint's secret in DEMO_WEBHOOK_SECRET (a
`whsec_` key, the one the demo roster's `secret_env` names). It stands in for a vagtchef's phone
app or the vagtcentral's integration: a 204 for a good signature, a 401 for a bad one (which
notify treats as a failed channel and falls back), and a repeated `webhook-id` is acknowledged
but printed once, as Standard Webhooks asks receivers to deduplicate.

POST /alertmanager/<receiver> takes Alertmanager's notifications (the ops on-call's page): Alertmanager
cannot sign a body, so it must carry `Authorization: Bearer <DEMO_ALERTMANAGER_TOKEN>` (401 without).
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
from collections import OrderedDict
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SEEN_LIMIT = 10_000  # webhook-ids remembered for deduplication; a demo never gets near it


def describe(payload: dict[str, Any]) -> str:
    """One line a person can read: which stage of which alert, for which case and kommune."""
    alert = payload.get("alert") or {}
    parts = [
        str(payload.get("stage", "?")),
        str(alert.get("severity", "")),
        str(alert.get("reason", "")),
        f"case {alert.get('reference') or alert.get('case_id', '?')}",
        f"kommune {alert.get('kommune', '?')}",
        str(alert.get("title", "")),
    ]
    return "  ".join(p for p in parts if p)


def describe_alerts(payload: dict[str, Any]) -> list[str]:
    """One line per alert of an Alertmanager notification: state, name, severity, service, summary."""
    lines = []
    for alert in payload.get("alerts") or []:
        labels = alert.get("labels") or {}
        parts = [
            str(alert.get("status", "?")).upper(),
            str(labels.get("alertname", "?")),
            str(labels.get("severity", "")),
            str(labels.get("service", "")),
            str((alert.get("annotations") or {}).get("summary", "")),
        ]
        lines.append("  ".join(p for p in parts if p))
    return lines


def build_app(secret: str, *, alertmanager_token: str = "", out: Any = sys.stdout) -> Starlette:
    verifier = Webhook(secret)
    seen: OrderedDict[str, None] = OrderedDict()
    counts = {"verified": 0, "rejected": 0, "repeats": 0, "alertmanager": 0}

    async def receive(request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            verifier.verify(body, headers)
        except WebhookVerificationError as error:
            counts["rejected"] += 1
            print(f"[webhook] REJECTED {request.url.path}: bad signature ({error})", file=out, flush=True)
            return Response(status_code=401)
        message_id = headers["webhook-id"]
        if message_id in seen:
            counts["repeats"] += 1
            return Response(status_code=204)  # already printed: a redelivery after a lost answer
        seen[message_id] = None
        if len(seen) > SEEN_LIMIT:
            seen.popitem(last=False)
        counts["verified"] += 1
        payload = json.loads(body)
        text = str(payload.get("text", "")).splitlines()
        print(
            f"[webhook] signature ok  {request.url.path}  {describe(payload)}\n"
            f"          {text[0] if text else ''}\n          ack: {payload.get('ack_url', '-')}",
            file=out,
            flush=True,
        )
        return Response(status_code=204)

    async def from_alertmanager(request: Request) -> Response:
        given = request.headers.get("authorization", "")
        if not alertmanager_token or not hmac.compare_digest(given.encode(), f"Bearer {alertmanager_token}".encode()):
            counts["rejected"] += 1
            print(f"[webhook] REJECTED {request.url.path}: no valid bearer token", file=out, flush=True)
            return Response(status_code=401)
        counts["alertmanager"] += 1
        payload = json.loads(await request.body())
        lines = describe_alerts(payload)
        print(
            "\n".join([f"[alertmanager] to {payload.get('receiver', '?')}: {lines[0] if lines else ''}",
                       *(f"               {line}" for line in lines[1:])]),
            file=out,
            flush=True,
        )  # fmt: skip
        return Response(status_code=204)

    async def stats(_: Request) -> Response:
        return JSONResponse(counts)

    return Starlette(
        routes=[
            Route("/stats", stats, methods=["GET"]),
            Route("/alertmanager/{receiver}", from_alertmanager, methods=["POST"]),
            Route("/{path:path}", receive, methods=["POST"]),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.webhook_receiver", description=__doc__)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    secret = os.environ.get("DEMO_WEBHOOK_SECRET", "")
    if not secret.startswith("whsec_"):
        print("DEMO_WEBHOOK_SECRET must hold the endpoint's whsec_ secret", file=sys.stderr)
        return 2
    print(f"[webhook] listening on http://{args.host}:{args.port}/ (Standard Webhooks signatures checked)", flush=True)
    app = build_app(secret, alertmanager_token=os.environ.get("DEMO_ALERTMANAGER_TOKEN", ""))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
