"""Data files (rules, roster, alert policy): read the YAML, and report every problem naming file, entry and field.

A service models its file as pydantic models in its adapters. Their validators raise `ValueError`
with the sentence a user reads (or `Refused` for problems below the field they check); `collect`
turns pydantic's errors into lines `<file>: <entry and field>: <sentence>`, with the place written
by the service (`rule 'x': window`, `vagtchefer #2 (vc-b).channels #1.to`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, TypeAlias

import yaml
from pydantic import BaseModel, BeforeValidator, PlainValidator, ValidationError, ValidationInfo, model_validator

# Where pydantic found a problem: field names, list indexes and mapping keys, outermost first.
Loc: TypeAlias = tuple[str | int, ...]

# The default of a field that a file may leave out and whose validator then reads it as null, as
# an absent key of the YAML mapping reads: `version: int = LEFT_OUT` (typed Any for the type checker).
LEFT_OUT: Final[Any] = None


class DataFileError(ValueError):
    """A data file that cannot be used; the message lists each problem with its place, one a line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Problems:
    """Every problem of one file, each line starting with the file's name."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[str] = []

    def add(self, where: str | None, message: str) -> None:
        self.found.append(": ".join(p for p in (self.source, where) if p) + ": " + message)

    def raise_if_any(self) -> None:
        if self.found:
            raise DataFileError(self.found)


# In a Refused place: the entry that holds the field (a problem of two fields together).
ENTRY: Final = ".."


class Refused(ValueError):
    """Problems a validator found below the field it checks: (place below it, sentence) each."""

    def __init__(self, *problems: tuple[Loc, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


class Entry(BaseModel):
    """A mapping in a data file (the whole file, a rule, a recipient); `SHAPE` says what it must look like."""

    SHAPE: ClassVar[str] = "must be a mapping"

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, raw: object) -> object:
        if not isinstance(raw, Mapping):
            raise ValueError(cls.SHAPE)
        return raw


def _version(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"must be a whole number from 1 up, not {value!r}")
    return value


# A file's `version`: a whole number from 1 up.
Version: TypeAlias = Annotated[int, PlainValidator(_version)]


def non_empty_list(sentence: str) -> BeforeValidator:
    """Refuses anything but a list with something in it, in the file's words; the items are validated next."""

    def check(value: object) -> object:
        if not isinstance(value, list) or not value:
            raise ValueError(sentence)
        return value

    return BeforeValidator(check)


def non_empty_text(sentence: str) -> PlainValidator:
    """Text with more than white space in it, stripped; anything else is refused in the file's words."""

    def check(value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(sentence)
        return value.strip()

    return PlainValidator(check)


def context_of(info: ValidationInfo) -> dict[str, Any]:
    """What the entries of one file check against (ids seen so far, valid entries), passed to model_validate."""
    if not isinstance(info.context, dict):
        raise TypeError("validate a data file's models with context={...}")
    return info.context


def read_yaml(path: str | Path, what: str) -> object:
    """The parsed document; a file that cannot be read, or is not YAML (line and column named), is a DataFileError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError([f"{path}: cannot read the {what} file: {exc.strerror or exc}"]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataFileError([f"{path}: not valid YAML: {exc}"]) from exc


def collect(
    error: ValidationError,
    problems: Problems,
    *,
    place: Callable[[Loc], str | None],
    unknown_field: Callable[[Loc], str],
) -> None:
    """Adds pydantic's errors to `problems` in the file's words.

    `place` writes a location as the file's users name it; `unknown_field` is the sentence for a
    field the model does not have. A required field that is absent is "missing".
    """
    for found in error.errors():
        loc: Loc = tuple(found["loc"])
        cause = found.get("ctx", {}).get("error")
        if isinstance(cause, Refused):
            for below, message in cause.problems:
                problems.add(place(loc[:-1] if below == (ENTRY,) else loc + below), message)
        elif isinstance(cause, ValueError):
            problems.add(place(loc), str(cause))
        elif found["type"] == "extra_forbidden":
            problems.add(place(loc), unknown_field(loc))
        elif found["type"] == "missing":
            problems.add(place(loc), "missing")
        else:
            problems.add(place(loc), found["msg"])
