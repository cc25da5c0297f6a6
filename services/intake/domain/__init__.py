"""Intake's domain: request rules, kommune resolution, case references and the case lifecycle; no I/O."""
