-- Case work: the status `waiting` (for the person or a partner), the closure reason of a closed case (or the
-- one a closure request asks for), and the case a duplicate was merged into.
ALTER TABLE cases DROP CONSTRAINT cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check
    CHECK (status IN ('open', 'in_progress', 'waiting', 'referred', 'closure_requested', 'closed'));
ALTER TABLE cases ADD COLUMN closure_reason TEXT
    CHECK (closure_reason IN ('resolved', 'referred_out', 'no_further_contact', 'duplicate', 'not_trafficking',
                              'out_of_scope', 'withdrawn_by_person'));
ALTER TABLE cases ADD COLUMN merged_into TEXT REFERENCES cases (id);
