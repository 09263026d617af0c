-- Intake: reassembly of concatenated SMS parts and per-sender flood detection need plain (non-personal)
-- columns: a group key derived from the contact and the provider's part reference, and the part position.
ALTER TABLE reports ADD COLUMN part_group TEXT;
ALTER TABLE reports ADD COLUMN part_index INTEGER;
ALTER TABLE reports ADD COLUMN part_total INTEGER;
CREATE INDEX reports_part_group ON reports (part_group);
CREATE INDEX reports_contact_recent ON reports (contact_id, created_at);
