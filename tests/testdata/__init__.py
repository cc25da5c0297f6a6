"""Data files for tests only: the real deadline rules and alert policy with windows and timeouts of seconds."""

from pathlib import Path
from typing import Final

TESTDATA: Final = Path(__file__).resolve().parent
# politigarantier.yaml with windows of seconds (tests/unit/deadlines/test_rules.py holds the two together).
SECONDS_RULES_FILE: Final = TESTDATA / "deadlines-rules-seconds.yaml"
# policy.yaml with timeouts of seconds (tests/unit/notify/test_policy.py holds the two together).
SECONDS_POLICY_FILE: Final = TESTDATA / "notify-policy-seconds.yaml"
