ALTER TABLE reports DROP COLUMN ivr_path;
DROP INDEX call_recordings_call;
DROP TABLE call_recordings;
DROP TABLE duty_rosters;
DROP INDEX calls_unreported;
DROP TABLE calls;
