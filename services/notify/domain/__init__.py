"""The notify service's domain: roster, alert policy, the alert state machine and delivery rules; no I/O."""
