"""Runs services side by side in the foreground with prefixed output: `python -m deploy.local.run intake deadlines`.

Each service listens on its API port and on its ops port (`<SERVICE>_OPS_PORT`, by default
intake 9001, deadlines 9002, notify 9003, reporting 9004: /metrics, /docs, /asyncapi.json), the
targets deploy/prometheus/prometheus.yml scrapes. Ctrl-C (or SIGTERM) stops them all gracefully;
if one dies, the others are stopped too, so a broken service is never left unnoticed behind a
healthy-looking terminal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

COLOURS = ["\033[36m", "\033[35m", "\033[33m", "\033[32m"]
RESET = "\033[0m"


def pump(name: str, colour: str, stream: object) -> None:
    tty = sys.stdout.isatty()
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        prefix = f"{colour}{name:>10}{RESET} | " if tty else f"{name:>10} | "
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


def main(services: list[str]) -> int:
    if not services:
        print("usage: python -m deploy.local.run SERVICE [SERVICE ...]", file=sys.stderr)
        return 2
    procs: dict[str, subprocess.Popen[str]] = {}
    for i, name in enumerate(services):
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}", "serve"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        procs[name] = proc
        threading.Thread(target=pump, args=(name, COLOURS[i % len(COLOURS)], proc.stdout), daemon=True).start()

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"[run] {name} exited with code {proc.returncode}; stopping the others", file=sys.stderr)
                exit_code = proc.returncode or 1
                stopping = True
        time.sleep(0.3)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in procs.items():
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print(f"[run] {name} did not stop in 20 s; killing it", file=sys.stderr)
            proc.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
