"""The notify service: tells the right officers about deadlines and acute reports, escalates, records acks."""
