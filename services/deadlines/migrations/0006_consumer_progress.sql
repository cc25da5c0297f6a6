-- How far this service's consumer has caught up with each partition of a topic (cases.v1): every
-- message appended to the partition before `caught_up_as_of` (Postgres's clock) has been processed,
-- its effect committed. NULL: a partition known to exist but not yet caught up. The timer fires a
-- warning or breach only at or before the least of them over every partition of cases.v1, so an
-- event already on the bus that would stop a deadline is applied before the deadline can breach.
-- Written by every instance for the partitions it is assigned; the values only ever move forward.
CREATE TABLE consumer_progress (
    topic           text        NOT NULL,
    partition       integer     NOT NULL CHECK (partition >= 0),
    caught_up_as_of timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (topic, partition)
);
