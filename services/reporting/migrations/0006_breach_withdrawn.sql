-- A breach withdrawn (dk.politi.deadline.breach_withdrawn): the stop action happened by the due time
-- but reached deadlines after the breach fired. Such a deadline was never broken: once withdrawn, its
-- breached_at stays NULL whatever order the breach and the withdrawal arrive in (the upsert in
-- services.reporting.adapters.repository and DeadlineFact.merge), so the month counters' trigger
-- (count_deadlines, 0004) moves it out of "breached" and every figure counts it met within the window.
ALTER TABLE deadlines ADD COLUMN breach_withdrawn boolean NOT NULL DEFAULT false;
