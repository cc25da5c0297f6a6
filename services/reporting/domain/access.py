"""Who may read which council report (rådsrapport): people by their role and kommune; pure, no I/O.

DOMAIN.md, "who may see what": a council secretary reads her own kommune's figures and the kredsråd's
(the district's); police read every report. The kredsråd's secretary (kommune `kreds`) reads the
district and every one of the ten kommuner: the kredsråd is the police director and the ten mayors,
it sets the direction the lokalråd work in (the cooperation plan, seeds/samarbejdsplan-2023.txt), and
its own report already lists every kommune's figures; a kommune's report adds the same figures in
more detail, never case-level data. Anyone else reads none. A council secretary whose token names
no single kommune reads the kredsråd's report only: a reach is never widened by a guess.
Machine keys are not people: their role decides (shared/auth.py), as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.reporting.domain.report import KREDS, Scope
from shared.reference import kommuner


@dataclass(frozen=True, slots=True)
class Readership:
    """The scopes a person may read: `kreds` and kommunekoder; None: every one."""

    scopes: frozenset[str] | None

    def may_read(self, scope: Scope) -> bool:
        return self.scopes is None or str(scope) in self.scopes

    @property
    def reads_any(self) -> bool:
        return self.scopes is None or bool(self.scopes)

    def choices(self) -> list[Scope]:
        """What a person may pick, the district first, then the kommuner in the reference data's order."""
        every = [Scope(None), *(Scope(code) for code in kommuner())]
        return [scope for scope in every if self.may_read(scope)]

    @property
    def own(self) -> Scope:
        """The report a person reads first: her kommune's if she has one of her own, else the district's."""
        if self.scopes is not None:
            for code in kommuner():
                if code in self.scopes:
                    return Scope(code)
        return Scope(None)


def readership(role: str | None, kommune: str | None) -> Readership:
    """`role`: the API role a person's provider roles give (shared/auth.py `role_of`: police, council or None)."""
    if role == "police":
        return Readership(None)
    if role != "council":
        return Readership(frozenset())
    if kommune == KREDS:
        return Readership(None)
    if kommune is not None and kommune in kommuner():
        return Readership(frozenset({KREDS, kommune}))
    return Readership(frozenset({KREDS}))
