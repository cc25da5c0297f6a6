"""Reads the roster and policy YAML files; a bad file stops start-up with every problem named."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import yaml

from services.notify.domain.policy import Policy, parse_policy
from services.notify.domain.problems import DataFileError
from services.notify.domain.roster import Roster, parse_roster
from shared.reference import kommuner

DATA_DIR: Final = Path(__file__).resolve().parent.parent / "data"
DEFAULT_ROSTER_FILE: Final = DATA_DIR / "roster.yaml"
DEFAULT_POLICY_FILE: Final = DATA_DIR / "policy.yaml"
SECONDS_POLICY_FILE: Final = DATA_DIR / "test-seconds-policy.yaml"


def _read(path: Path, what: str) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError([f"{path}: cannot read the {what} file: {exc.strerror or exc}"]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataFileError([f"{path}: not valid YAML: {exc}"]) from exc


def load_roster(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Roster:
    """The roster; webhook `secret_env` names are looked up in `env` (the process environment by default)."""
    source = Path(path)
    return parse_roster(
        _read(source, "roster"), str(source), kommuner=kommuner(), secrets=os.environ if env is None else env
    )


def load_policy(path: str | os.PathLike[str]) -> Policy:
    source = Path(path)
    return parse_policy(_read(source, "alert policy"), str(source))
