"""A comma-separated KAFKA_BOOTSTRAP_SERVERS reaches FastStream as a list (it would take the string as one host)."""

from __future__ import annotations

import pytest

from shared.asyncapi import asyncapi_document
from shared.kafka import bootstrap_servers

pytestmark = pytest.mark.unit


def test_a_cluster_list_is_split_into_its_brokers() -> None:
    assert bootstrap_servers("b1:9092, b2:9192,b3:9292,") == ["b1:9092", "b2:9192", "b3:9292"]
    assert bootstrap_servers("localhost:9092") == ["localhost:9092"]


def test_an_empty_list_is_refused_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="KAFKA_BOOTSTRAP_SERVERS"):
        bootstrap_servers(" , ")


def test_the_asyncapi_document_names_each_broker() -> None:
    document = asyncapi_document(service="intake", version="1", bootstrap="b1:9092,b2:9192,b3:9292", publishes={})
    assert sorted(s["host"] for s in document["servers"].values()) == ["b1:9092", "b2:9192", "b3:9292"]
