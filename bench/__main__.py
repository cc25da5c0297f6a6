"""`python -m bench [NAME ...]`: runs the benchmarks (default: all) and writes bench/results/<name>.json."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
import time

from bench.harness import write_result

BENCHMARKS = ["intake", "deadlines", "notify", "reporting", "tracing", "privacy"]


def main(names: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    chosen = names or BENCHMARKS
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; known: {BENCHMARKS}", file=sys.stderr)
        return 2
    for name in chosen:
        print(f"[bench] {name}: running ...", flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        result = asyncio.run(module.run())
        path = write_result(name, result)
        print(f"[bench] {name}: done in {time.monotonic() - started:.0f}s -> {path}")
        print(json.dumps(result.get("summary", result), indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
