"""What a client may send as text, and pydantic's validation errors as words a person reads.

The text check (`SingleLine`, `FreeText`, `text_problem`): which characters no name, id or free
text needs, used by every service's API for its bodies, query strings and path parameters.

The wording: one for every 422 answer and dead letter. Used by shared/http.py (query, path and
header errors of any service), by intake's body validation (services/intake/entrypoints/bodies.py)
and by the consumer's dead-letter reason (shared/consumer.py). Messages never quote the input: it
may be personal, and an error answer is no place to repeat 3 KB of someone's text. pydantic's own
wording is used only where it is known not to quote it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, TypeVar

from pydantic import AfterValidator, ValidationError
from pydantic_core import PydanticCustomError

# --- Text a client sends ------------------------------------------------------------------------
#
# Refused in every name, id, single-line field and free text: the characters Unicode calls control
# (Cc), format (Cf) and line or paragraph separator (Zl, Zp). Nobody types them as text, and each
# changes what a reader sees or what a program does with the text:
# - controls: C0 (U+0000-U+001F, NUL included: Postgres text cannot even hold it), DEL and C1
#   (U+007F-U+009F): a CR LF in a name writes a line of its own into an e-mail or a log;
# - bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069): they reorder
#   what is shown, so a reader sees other text than was stored;
# - invisible characters: zero-width (U+200B-U+200D, U+2060, U+FEFF), soft hyphen, invisible
#   operators, tags (U+E0000-U+E007F, text no one sees) and the rest of Cf: "vc-a" with a U+200B in
#   it looks like the roster id vc-a and is not. (U+200D also joins emoji such as a family into one
#   picture; free text refuses it too, and a report loses nothing by it.)
# - U+2028, U+2029: line breaks by another name.
# Free text (a description) may in addition hold tabs and line breaks; CR LF and a lone CR become
# LF, so a line break is one character whoever typed it. Everything else, markup, emoji and their
# variation selectors included, is text and kept as typed (intake's README: "Free text is text").
# The classes below are Unicode 14's (Python 3.11's unicodedata); tests/unit/platform/test_text.py
# checks them against unicodedata, so a newer Unicode's format characters are not missed.

_CONTROL = "\x00-\x1f\x7f-\x9f"
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_INVISIBLE = (
    "\u00ad\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200d\u2060-\u2064\u206a-\u206f"
    "\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_SEPARATORS = "\u2028\u2029"
_NOT_IN_A_LINE = re.compile(f"[{_CONTROL}{_BIDI}{_INVISIBLE}{_SEPARATORS}]")
_NOT_IN_FREE_TEXT = re.compile(f"(?![\t\n\r])[{_CONTROL}{_BIDI}{_INVISIBLE}{_SEPARATORS}]")
_IS_BIDI = re.compile(f"[{_BIDI}]")
_IS_INVISIBLE = re.compile(f"[{_INVISIBLE}]")
_LINE_BREAKS = "\n\r\u2028\u2029"


def text_problem(value: str, *, free_text: bool = False) -> PydanticCustomError | None:
    """Why `value` is refused as a name or single-line field (or, with `free_text`, as free text), or None.

    The first offending character is named by its code point, never shown: it is invisible, or
    would break the answer's own lines. Free text may hold CRs here: `free_text` turns them into LFs.
    """
    found = (_NOT_IN_FREE_TEXT if free_text else _NOT_IN_A_LINE).search(value)
    if found is None:
        return None
    char = found.group()
    point = f"U+{ord(char):04X}"
    if char in _LINE_BREAKS:
        if free_text:
            return _error("control_characters", f"Contains a Unicode line separator ({point}); use a line break.")
        return _error("single_line", f"Write this on one line: it contains a line break ({point}).")
    if _IS_BIDI.match(char):
        return _error("bidi_control", f"Contains an invisible text-direction character ({point}); remove it.")
    if _IS_INVISIBLE.match(char):
        return _error("invisible_character", f"Contains an invisible character ({point}); remove it.")
    return _error("control_characters", f"Contains a control character ({point}); remove it.")


def _error(code: str, message: str) -> PydanticCustomError:
    # The message travels as context, so readable() takes it as it is and a brace is never a placeholder.
    return PydanticCustomError(code, "{message}", {"message": message})


T = TypeVar("T")


def single_line(value: T) -> T:
    """A pydantic after-validator: text as a name, id or single-line field takes it; anything else passes."""
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        raise problem
    return value


def free_text(value: T) -> T:
    """A pydantic after-validator for free text: as `single_line`, but tabs and line breaks (as LF) are kept."""
    if not isinstance(value, str):
        return value
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    if (problem := text_problem(text, free_text=True)) is not None:
        raise problem
    return text  # type: ignore[return-value]  # str in, str out


# In Annotated: `Annotated[str, StringConstraints(max_length=100), SingleLine]`, or on a query
# parameter `Annotated[str | None, Query(), SingleLine]`; a refusal is a 422 naming the field.
SingleLine: Final = AfterValidator(single_line)
FreeText: Final = AfterValidator(free_text)

# --- Errors as words ------------------------------------------------------------------------------

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
