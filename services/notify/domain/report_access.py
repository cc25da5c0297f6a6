"""Why the console reads a report (formål, purpose): the purpose intake logs, decided by the alert's deadline rule.

Intake logs every read of a report's personal content with its purpose (docs/privacy.md). From the
console an officer reads a report to act on its alert: a follow-up (tryghedsopfølgning) alert is read
for `followup`; anything else (an acute report, a guarantee such as a burglary's 24 hours to the
scene) for `acute_response`.
"""

from __future__ import annotations

from typing import Literal

Purpose = Literal["acute_response", "followup"]
ACUTE_RESPONSE: Purpose = "acute_response"
FOLLOWUP: Purpose = "followup"
# The follow-up rules' ids begin so (services/deadlines/data/politigarantier.yaml: tryghedsopfoelgning_burglary).
FOLLOWUP_RULE_PREFIX = "tryghedsopfoelgning"
_PURPOSE_DA: dict[str, str] = {ACUTE_RESPONSE: "akut indsats", FOLLOWUP: "tryghedsopfølgning"}


def report_purpose(deadline_rule: str) -> Purpose:
    """The purpose a read from an alert of `deadline_rule` is logged with: a follow-up's `followup`, else
    `acute_response`."""
    return FOLLOWUP if deadline_rule.startswith(FOLLOWUP_RULE_PREFIX) else ACUTE_RESPONSE


def purpose_da(purpose: str) -> str:
    """The purpose as the console says it: "akut indsats (acute_response)", the code beside the Danish words."""
    words = _PURPOSE_DA.get(purpose)
    return f"{words} ({purpose})" if words else purpose
