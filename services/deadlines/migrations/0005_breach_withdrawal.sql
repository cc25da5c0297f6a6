-- A breach is only a breach when it is one (services/deadlines/domain/deadline.py): a stop action
-- that happened by the due time but arrived after the breach fired withdraws it, if the police
-- recorded it within a week of the due time. The action's recording time is kept to judge that
-- (NULL for actions stored before this column: judged by their own time alone), and a deadline
-- whose breach could not be withdrawn (recorded too late) says so: it counts as met late.
ALTER TABLE case_actions ADD COLUMN recorded_at timestamptz;
ALTER TABLE deadlines ADD COLUMN breach_stands boolean NOT NULL DEFAULT false;
