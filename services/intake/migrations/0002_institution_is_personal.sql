-- The school named in a drug-dealing report is the citizen's free text: it moves to case_details,
-- beside the report's other words, and off `cases` (whose columns may reach events and reports).
ALTER TABLE case_details ADD COLUMN institution text;
UPDATE case_details d SET institution = c.institution FROM cases c
    WHERE c.case_id = d.case_id AND c.institution IS NOT NULL;
ALTER TABLE cases DROP COLUMN institution;
