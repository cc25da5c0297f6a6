"""Container health probe: `python -m deploy.healthcheck [URL]` exits 0 when the service answers 200.

The image has no curl (python:3.11-slim), and one image runs four services on four ports, so the
image's HEALTHCHECK cannot name a URL. Without a URL the probe finds which service this container
runs (the `python -m services.<name>` process) and asks that service's own settings for its port,
so `<SERVICE>_PORT` overrides are followed. Standard library only, except for that settings import.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

_SERVICE_ARG = re.compile(r"^services\.([a-z_]+)$")


def running_service(proc: Path = Path("/proc")) -> str | None:
    """The name of the first `python -m services.<name>` process found, or None."""
    for cmdline in sorted(proc.glob("[0-9]*/cmdline")):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended while we looked, or belongs to another user
            continue
        for before, arg in itertools.pairwise(args):
            if before == b"-m" and (found := _SERVICE_ARG.match(arg.decode(errors="replace"))):
                return found.group(1)
    return None


def service_port(service: str) -> int:
    """The public port the service listens on, read from its settings as the service reads them."""
    from shared.settings import ServiceSettings

    module = importlib.import_module(f"services.{service}.settings")
    (settings_type,) = (
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value.__module__ == module.__name__
    )
    return int(settings_type().port)


def probe(url: str, timeout: float) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (http to our own port)
            return answer.status == 200, f"{url}: {answer.status}"
    except urllib.error.HTTPError as exc:  # 503 from /readyz names the failing dependency in its body
        return False, f"{url}: {exc.code} {exc.read(500).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", help="URL to ask (default: this container's service, /readyz)")
    parser.add_argument("--path", default="/readyz", help="path when no URL is given (/readyz or /healthz)")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    url = args.url
    if url is None:
        service = running_service()
        if service is None:
            print("no `python -m services.<name>` process in this container", file=sys.stderr)
            return 1
        url = f"http://127.0.0.1:{service_port(service)}{args.path}"
    healthy, said = probe(url, args.timeout)
    print(said, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
