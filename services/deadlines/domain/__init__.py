"""The deadlines service's domain: rules, the Deadline state machine and the per-case aggregate; no I/O."""
