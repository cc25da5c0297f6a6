"""pydantic's validation errors as words a person reads: one wording for every 422 answer and dead letter.

Used by shared/http.py (query, path and header errors of any service), by intake's body validation
(services/intake/entrypoints/bodies.py) and by the consumer's dead-letter reason (shared/consumer.py).
Messages never quote the input: it may be personal, and an error answer is no place to repeat
3 KB of someone's text. pydantic's own wording is used only where it is known not to quote it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

EXAMPLE_TIME: Final = "2026-03-01T08:15:00+01:00"
FIXED_MESSAGES: Final[Mapping[str, str]] = {
    "missing": "This field is required.",
    "extra_forbidden": "This field is not accepted here; leave it out.",
    "string_type": "Must be text.",
    "bool_type": "Must be true or false.",
    "bool_parsing": "Must be true or false.",
    "float_type": "Must be a number.",
    "float_parsing": "Must be a number.",
    "finite_number": "Must be a number.",
    "int_type": "Must be a whole number.",
    "int_parsing": "Must be a whole number.",
    "datetime_type": f"Must be a date and time, such as {EXAMPLE_TIME}.",
    "datetime_parsing": f"Must be a date and time, such as {EXAMPLE_TIME}.",
    "datetime_from_date_parsing": f"Must be a date and time, such as {EXAMPLE_TIME}.",
    "timezone_aware": f"Give the time with its time zone, such as {EXAMPLE_TIME} or 2026-03-01T07:15:00Z.",
    "model_type": "Must be an object with fields.",
    "model_attributes_type": "Must be an object with fields.",
    "dict_type": "Must be an object with fields.",
    "json_invalid": "The body is not valid JSON.",
    "string_pattern_mismatch": "This value has the wrong form.",
    "uuid_parsing": "Must be a UUID, such as 0b6f6c1e-2c1a-4d8e-9f3b-7a5d2e4c1b90.",
    "uuid_type": "Must be a UUID, such as 0b6f6c1e-2c1a-4d8e-9f3b-7a5d2e4c1b90.",
    "enum": "Not one of the accepted values.",
    "int_from_float": "Must be a whole number.",
    "list_type": "Must be a list.",
}
GENERIC_MESSAGE: Final = "This value is not valid here."


def readable(error: Mapping[str, Any]) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as a sentence."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind in FIXED_MESSAGES:
        return FIXED_MESSAGES[kind]
    if kind == "string_too_short":
        return "Must not be empty." if ctx.get("min_length") == 1 else f"At least {ctx['min_length']} characters."
    if kind == "string_too_long":
        return f"At most {ctx['max_length']:,} characters."
    if kind == "greater_than_equal":
        return f"Must be at least {ctx['ge']}."
    if kind == "less_than_equal":
        return f"Must be at most {ctx['le']}."
    if kind == "literal_error":
        return f"Must be one of: {ctx['expected']}."
    if "message" in ctx:
        # Our own PydanticCustomErrors (shared wording, never the input) carry their sentence here.
        return str(ctx["message"])
    if kind == "value_error":
        return str(error.get("msg", GENERIC_MESSAGE)).removeprefix("Value error, ")
    # pydantic's own wording of other errors may quote the input ("found `x` at 1"): never passed on.
    return GENERIC_MESSAGE


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}|[0-9]{1,6}")


def safe_name(part: int | str) -> str:
    """A part of an error's location: a field name or list index as is, else a placeholder.

    An unknown field's name is the client's own text (it could be a phone number, or 3 KB).
    """
    text = str(part)
    return text if _NAME.fullmatch(text) else "(unknown field)"


def dotted(loc: tuple[int | str, ...] | list[Any], default: str) -> str:
    """A pydantic location as a dotted path (contact.phone), or `default` for the whole thing."""
    return ".".join(safe_name(part) for part in loc) or default


def describe(exc: ValidationError, what: str, limit: int = 10) -> str:
    """A one-line summary for logs and dead-letter headers: "invalid <what>: field: message; ..."."""
    parts = [
        f"{dotted(err['loc'], what)}: {readable(err)}" for err in exc.errors(include_url=False, include_input=False)
    ]
    return f"invalid {what}: " + "; ".join(parts[:limit])
