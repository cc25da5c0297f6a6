"""Intake's adapters: Postgres storage of cases, actions and idempotency keys."""
