ALTER TABLE cases DROP COLUMN sla_notified_at;
DROP INDEX outbox_kind_created;
DROP INDEX outbox_case;
ALTER TABLE outbox DROP COLUMN recipient_user_id;
ALTER TABLE outbox DROP COLUMN case_id;
DROP TABLE notification_recipients;
