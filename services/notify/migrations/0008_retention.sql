-- The retention purge (services/notify/entrypoints/retention.py, docs/privacy.md): what it looks
-- for each round is found by index, by age, however large the tables grow.
CREATE INDEX alerts_resolved ON alerts (resolved_at) WHERE state = 'resolved';
CREATE INDEX deliveries_by_age ON deliveries (created_at);
CREATE INDEX case_refs_seen ON case_refs (seen_at);
CREATE INDEX used_ack_links_used ON used_ack_links (used_at);
