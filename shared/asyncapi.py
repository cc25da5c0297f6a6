"""AsyncAPI documents for what a service publishes and consumes, built from the event models."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal, Union

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import create_model

from shared.events.envelope import CloudEvent, EventData
from shared.kafka import bootstrap_servers


@cache
def envelope_of(model: type[EventData]) -> type[CloudEvent]:
    """The envelope with `type` and `data` pinned to one event model, so the schema shows real fields."""
    return create_model(
        model.__name__ + "Event",
        __base__=CloudEvent,
        __doc__=(model.__doc__ or model.event_type).strip(),
        type=(Literal[model.event_type], model.event_type),  # type: ignore[arg-type]
        data=(model, ...),
    )


def asyncapi_document(
    *,
    service: str,
    version: str,
    bootstrap: str,
    publishes: dict[str, list[type[EventData]]],
    consumes: dict[str, list[type[EventData]]] | None = None,
) -> dict[str, Any]:
    broker = KafkaBroker(bootstrap_servers(bootstrap))  # never started: it only carries the channel descriptions
    for topic, models in publishes.items():
        schema = Union[tuple(envelope_of(m) for m in models)]  # type: ignore[valid-type]  # noqa: UP007
        broker.publisher(
            topic,
            title=f"{topic}:publish",
            description=f"{service} publishes " + ", ".join(m.event_type for m in models),
            schema=schema,
        )
    for topic, models in (consumes or {}).items():
        consumed: Any = Union[tuple(envelope_of(m) for m in models)]  # noqa: UP007

        async def handler(event: consumed) -> None:
            """Documentation only."""

        broker.subscriber(
            topic,
            group_id=service,
            title=f"{topic}:subscribe",
            description=f"{service} consumes " + ", ".join(m.event_type for m in models),
        )(handler)
    spec = AsyncAPI(broker, title=f"mvsj {service}", version=version).to_specification()
    document: dict[str, Any] = spec.to_jsonable()
    return document
