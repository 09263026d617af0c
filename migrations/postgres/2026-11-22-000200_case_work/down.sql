DROP TABLE case_profiles;
ALTER TABLE cases DROP COLUMN merged_into;
ALTER TABLE cases DROP COLUMN closure_reason;
UPDATE cases SET status = 'in_progress' WHERE status = 'waiting';
ALTER TABLE cases DROP CONSTRAINT cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check
    CHECK (status IN ('open', 'in_progress', 'referred', 'closure_requested', 'closed'));
