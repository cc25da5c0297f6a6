"""Notify's adapters: Postgres repository, data-file loaders, webhook and SMTP clients, ack links."""
