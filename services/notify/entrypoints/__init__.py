"""Notify's entrypoints: Kafka consumer, HTTP routes, and the delivery and escalation timer loops."""
