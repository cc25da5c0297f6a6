"""The deadlines service's domain: rules, the Deadline state machine and the per-case aggregate; no I/O."""

from services.deadlines.domain.case_deadlines import CaseDeadlines
from services.deadlines.domain.deadline import (
    Deadline,
    DeadlineEvent,
    DeadlineState,
    NextFire,
    PoliceAction,
    Transition,
    deadline_id,
    emitted_event_id,
    event_time,
)
from services.deadlines.domain.durations import format_duration, parse_duration
from services.deadlines.domain.rules import (
    DEFAULT_RULES_FILE,
    SECONDS_RULES_FILE,
    Rule,
    RulesError,
    RuleSet,
    Trigger,
    load_rules,
    match,
    parse_rules,
)

__all__ = [
    "DEFAULT_RULES_FILE",
    "SECONDS_RULES_FILE",
    "CaseDeadlines",
    "Deadline",
    "DeadlineEvent",
    "DeadlineState",
    "NextFire",
    "PoliceAction",
    "Rule",
    "RuleSet",
    "RulesError",
    "Transition",
    "Trigger",
    "deadline_id",
    "emitted_event_id",
    "event_time",
    "format_duration",
    "load_rules",
    "match",
    "parse_duration",
    "parse_rules",
]
