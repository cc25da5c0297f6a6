"""Intake's entrypoints: the HTTP API of the citizen portal and of police systems."""
