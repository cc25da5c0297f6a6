"""Answers whether Kafka or Postgres really serves: `probe.py kafka|postgres [--wait SECONDS] [--brokers N]`.

Kafka counts as ready when an admin client's describe-cluster succeeds (an open
port is not enough: the controller may still be electing itself) and lists at least
`--brokers` live brokers (1 unless given; 3 for `make up KAFKA_BROKERS=3`); Postgres when
a connection runs `SELECT 1`. Exit 0 when ready, 1 when not.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

# Run as a script (deploy/local/*.sh), so the project's root is not on the path by itself.
ROOT = Path(__file__).resolve().parents[2]


async def kafka_ready(bootstrap: str, timeout: float, brokers: int = 1) -> str | None:
    # The services' own readiness check (shared/kafka.py), so "ready" means the same thing here.
    sys.path.insert(0, str(ROOT))
    from shared.kafka import describe_kafka

    cluster = await describe_kafka(bootstrap, timeout)
    if cluster is None or len(cluster["brokers"]) < brokers:
        return None
    return f"cluster {cluster['cluster_id']} with {len(cluster['brokers'])} broker(s)"


async def postgres_ready(url: str, timeout: float) -> str | None:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except Exception:
        return None
    try:
        version = await conn.fetchval("SHOW server_version")
        return f"PostgreSQL {version}"
    finally:
        await conn.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["kafka", "postgres"])
    parser.add_argument("--wait", type=float, default=0.0, help="keep trying this many seconds")
    parser.add_argument("--brokers", type=int, default=1, help="Kafka: ready once this many brokers are live")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    # aiokafka logs every refused connection; the dots below are the progress we want.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    deadline = time.monotonic() + args.wait
    dots = 0
    while True:
        if args.what == "kafka":
            found = await kafka_ready(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"), 3.0, args.brokers)
        else:
            found = await postgres_ready(
                os.environ.get("DATABASE_URL", "postgresql://politi:politi@localhost:5432/politi"), 3.0
            )
        if found:
            if dots:
                print(file=sys.stderr)
            if not args.quiet:
                print(found)
            return 0
        if time.monotonic() >= deadline:
            if dots:
                print(file=sys.stderr)
            return 1
        dots += 1
        print(".", end="", file=sys.stderr, flush=True)
        await asyncio.sleep(1.0)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
