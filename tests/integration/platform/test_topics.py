"""Topic creation on the real broker: min.insync.replicas is set on new topics and checked on old ones.

The local broker is a single node, so these tests ask for min.insync.replicas=2 explicitly on
one replica (Kafka accepts it; only writes would be refused); with KAFKA_REPLICATION_FACTOR >= 3
services ask for it by themselves (tests/unit/platform/test_kafka_durability.py).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import TopicMisconfigured, delete_topics, ensure_topics
from tests.support.infra import Namespace


async def min_insync(bootstrap: str, topic: str) -> str:
    """The topic's setting, once the broker describes the new topic (a moment after creating it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(50):
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            code, _, _, _, entries = response.resources[0]
            found = [e[1] for e in entries if e[0] == "min.insync.replicas"]
            if code == 0 and found:
                return str(found[0])
            await asyncio.sleep(0.2)
        raise AssertionError(f"the broker does not describe {topic}")
    finally:
        await admin.close()


async def test_new_topics_get_min_insync_replicas_and_old_weak_ones_are_refused(ns: Namespace) -> None:
    new, old = f"{ns.topics.prefix}durable.v1", f"{ns.topics.prefix}weak.v1"
    try:
        await ensure_topics(ns.kafka, [old], partitions=1, replication_factor=1)  # as created before the fix
        await ensure_topics(ns.kafka, [new], partitions=1, replication_factor=1, min_insync_replicas=2)
        assert await min_insync(ns.kafka, new) == "2"
        assert await min_insync(ns.kafka, old) == "1"

        with pytest.raises(TopicMisconfigured, match=rf"{old} \(1\)"):
            await ensure_topics(ns.kafka, [new, old], partitions=1, replication_factor=1, min_insync_replicas=2)
        await ensure_topics(ns.kafka, [new], partitions=1, replication_factor=1, min_insync_replicas=2)  # passes
    finally:
        with contextlib.suppress(Exception):
            await delete_topics(ns.kafka, [new, old])
