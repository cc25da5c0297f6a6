"""Schemathesis against a running service: no server errors, and every answer as its OpenAPI document says.

Each operation gets positive input (fits the schema) and negative input (does not), once as is and
once with real path parameters (a real case, a real deadline), so requests reach the rules and the
database, not only the 404. Generation is derandomized and bounded: a run is repeatable and takes
seconds, and a failure prints the request that broke it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 30}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def run_schemathesis(
    base_url: str,
    key_for: Callable[[str], str],
    real: Mapping[str, str],
    *,
    schema_url: str,
    bodies: Mapping[str, Any] | None = None,
) -> Counter[tuple[str, int]]:
    """Runs every operation in both modes; returns how often each operation answered each status.

    `key_for(path)` is the API key for an operation; `real` maps a path parameter to a value that exists;
    `schema_url` is the OpenAPI document on the service's ops port; `bodies` maps "METHOD /path" to a
    body that succeeds (e.g. one naming an officer of the test's roster), tried with generated and real parameters.
    """
    schema = schemathesis.openapi.from_url(schema_url)
    answered: Counter[tuple[str, int]] = Counter()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        variants: list[dict[str, Any]] = [{}]
        fixed = {name: value for name, value in real.items() if f"{{{name}}}" in operation.path}
        if fixed:
            variants.append({"path_parameters": fixed})
        body = (bodies or {}).get(f"{operation.method.upper()} {operation.path}")
        if body is not None:
            variants += [{**variant, "body": body} for variant in variants]
        for mode, examples in EXAMPLES.items():
            for variant in variants:
                strategy = operation.as_strategy(generation_mode=mode, **variant)
                try:
                    exercise(strategy, examples, base_url, key_for(operation.path), answered)
                except Unsatisfiable:
                    if mode is GenerationMode.POSITIVE:
                        raise
                    # Negative mode has nothing to break in an operation without parameters or body.
    return answered


def exercise(strategy: Any, examples: int, base_url: str, key: str, answered: Counter[tuple[str, int]]) -> None:
    headers = {"Authorization": f"Bearer {key}"}

    @given(case=strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def no_server_error(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=10)
        answered[(case.operation.label, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    no_server_error()


def statuses_by_operation(answered: Counter[tuple[str, int]]) -> dict[str, set[int]]:
    return {label: {s for (op, s) in answered if op == label} for label, _ in answered}
