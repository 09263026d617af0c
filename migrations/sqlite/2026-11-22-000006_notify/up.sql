-- Notifications: who is told what per organization, the outbox row's case and recipient (plain ids, for
-- per-case caps and per-recipient retries), and when a case's missed acknowledgement deadline was reported.
CREATE TABLE notification_recipients (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    topic            TEXT NOT NULL
        CHECK (topic IN ('case_critical', 'case_child', 'sla_breach')),
    user_id          TEXT NOT NULL REFERENCES users (id),
    created_at       TIMESTAMP NOT NULL,
    UNIQUE (organization_id, topic, user_id)
);

ALTER TABLE outbox ADD COLUMN case_id TEXT;
ALTER TABLE outbox ADD COLUMN recipient_user_id TEXT;
CREATE INDEX outbox_case ON outbox (case_id, kind, created_at);
CREATE INDEX outbox_kind_created ON outbox (kind, created_at);

ALTER TABLE cases ADD COLUMN sla_notified_at TIMESTAMP;
