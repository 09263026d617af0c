DROP INDEX reports_contact_recent;
DROP INDEX reports_part_group;
ALTER TABLE reports DROP COLUMN part_total;
ALTER TABLE reports DROP COLUMN part_index;
ALTER TABLE reports DROP COLUMN part_group;
