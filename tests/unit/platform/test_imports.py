"""Importing a service reads no data file: reference data is read on first use (docs/architecture.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unit

MODULES = [
    "services.intake.bootstrap",
    "services.intake.domain.fields",
    "services.intake.entrypoints.checks",
    "services.deadlines.bootstrap",
    "services.deadlines.handlers",
    "services.notify.bootstrap",
    "services.notify.domain.messages",
    "services.reporting.bootstrap",
    "services.reporting.handlers",
]


def test_importing_the_services_reads_no_data_file() -> None:
    # A fresh interpreter: in this one the modules are imported already.
    script = textwrap.dedent(
        f"""
        import importlib, shared.reference as reference
        read = []
        original = reference.load_data
        reference.load_data = lambda name: read.append(name) or original(name)
        for module in {MODULES!r}:
            importlib.import_module(module)
        print(",".join(read))
        """
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert found.stdout.strip() == ""


def test_the_spy_sees_a_read() -> None:
    # The check above can fail: the same spy sees the first use of the categories.
    script = textwrap.dedent(
        """
        import shared.reference as reference
        read = []
        original = reference.load_data
        reference.load_data = lambda name: read.append(name) or original(name)
        reference.categories()
        print(",".join(read))
        """
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert set(found.stdout.strip().split(",")) == {"categories.yaml"}
