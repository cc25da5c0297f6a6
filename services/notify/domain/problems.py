"""Collecting every problem of a data file, each naming file, entry and field, like the deadlines rules file."""

from __future__ import annotations


class DataFileError(ValueError):
    """A roster or policy file that cannot be used; the message lists each problem with its place."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[str] = []

    def add(self, where: str | None, message: str) -> None:
        self.found.append(": ".join(p for p in (self.source, where) if p) + ": " + message)

    def raise_if_any(self) -> None:
        if self.found:
            raise DataFileError(self.found)
