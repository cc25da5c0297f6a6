"""Running a service's ASGI app under uvicorn, the same way for every service."""

from __future__ import annotations

import logging
import sys

import uvicorn
from fastapi import FastAPI

from shared.runtime import NotMigrated
from shared.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings, service: str) -> int:
    logging.getLogger(__name__).info("%s listening on http://%s:%s", service, settings.host, settings.port)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep shared.logs' format
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
    )
    try:
        uvicorn.Server(config).run()
    except NotMigrated as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        return 3
    return 0
