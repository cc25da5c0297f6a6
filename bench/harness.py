"""What every benchmark gets: a private namespace on the shared broker and database, and a result writer."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.db import drop_schema
from shared.kafka import delete_topics, ensure_topics
from tests.support.infra import DEFAULT_DB, DEFAULT_KAFKA, Namespace

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


# Benchmarks run in the same kind of private namespace as the tests.
BenchContext = Namespace


@contextlib.asynccontextmanager
async def namespace(partitions: int = 6) -> AsyncIterator[BenchContext]:
    ctx = Namespace.new(
        os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_KAFKA),
        os.environ.get("DATABASE_URL", DEFAULT_DB),
        # Several people benchmarking on one broker and database keep apart by prefix.
        prefix=os.environ.get("BENCH_PREFIX", "b"),
    )
    await ensure_topics(ctx.kafka, ctx.topics.all(), partitions=partitions, replication_factor=1)
    try:
        yield ctx
    finally:
        for schema in ctx.schemas:
            with contextlib.suppress(Exception):
                await drop_schema(ctx.database_url, schema)
        with contextlib.suppress(Exception):
            await delete_topics(ctx.kafka, ctx.topics.all())


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine() -> dict[str, Any]:
    def cmd(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    libs = sorted((ROOT / ".cache" / "kafka" / "libs").glob("kafka_2.13-*.jar"))
    common = "" if libs else cmd("git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir")
    if common:  # a git worktree has no .cache of its own: `make up` ran in the main checkout
        libs = sorted((Path(common).parent / ".cache" / "kafka" / "libs").glob("kafka_2.13-*.jar"))
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kafka": libs[0].stem.removeprefix("kafka_2.13-") if libs else "unknown",
        "postgres": cmd("psql", "--version"),
        "kernel": platform.release(),
        # Other work on the machine skews every figure: the 1, 5 and 15 minute load averages at the end.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "at": datetime.now(UTC).isoformat(), "machine": machine(), **result}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
