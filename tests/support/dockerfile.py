"""Reads deploy/Dockerfile's instructions, so tests can run what the image would run, as it would."""

from __future__ import annotations

import re
import shlex

from tests.support.infra import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def arguments(name: str) -> list[str]:
    return [rest for word, rest in instructions() if word == name]


def environment() -> dict[str, str]:
    """The image's ENV (the KEY=VALUE form this Dockerfile uses)."""
    return dict(pair.split("=", 1) for env in arguments("ENV") for pair in shlex.split(env))
