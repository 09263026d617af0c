PRAGMA foreign_keys = OFF;
BEGIN;
DROP TABLE case_profiles;
CREATE TABLE cases_rebuilt (
    id                   TEXT PRIMARY KEY NOT NULL,
    organization_id      TEXT NOT NULL REFERENCES organizations (id),
    reference            TEXT NOT NULL UNIQUE,
    status               TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'in_progress', 'referred', 'closure_requested', 'closed')),
    risk                 TEXT NOT NULL CHECK (risk IN ('critical', 'high', 'medium', 'low')),
    risk_rank            INTEGER NOT NULL,
    exploitation_types   TEXT NOT NULL DEFAULT '',
    child_victim         BOOLEAN NOT NULL DEFAULT FALSE,
    shelter_needed       BOOLEAN NOT NULL DEFAULT FALSE,
    silent               BOOLEAN NOT NULL DEFAULT FALSE,
    language             TEXT,
    contact_id           TEXT REFERENCES contacts (id),
    assignee_id          TEXT REFERENCES users (id),
    follow_up_code_hash  TEXT UNIQUE,
    dek_wrapped          BLOB NOT NULL,
    key_version          INTEGER NOT NULL,
    sla_due_at           TIMESTAMP,
    acknowledged_at      TIMESTAMP,
    acknowledged_by      TEXT REFERENCES users (id),
    closed_at            TIMESTAMP,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    sla_notified_at      TIMESTAMP
);
INSERT INTO cases_rebuilt (id, organization_id, reference, status, risk, risk_rank, exploitation_types, child_victim, shelter_needed,
    silent, language, contact_id, assignee_id, follow_up_code_hash, dek_wrapped, key_version, sla_due_at,
    acknowledged_at, acknowledged_by, closed_at, created_at, updated_at, sla_notified_at)
SELECT id, organization_id, reference, CASE status WHEN 'waiting' THEN 'in_progress' ELSE status END, risk, risk_rank, exploitation_types, child_victim, shelter_needed,
    silent, language, contact_id, assignee_id, follow_up_code_hash, dek_wrapped, key_version, sla_due_at,
    acknowledged_at, acknowledged_by, closed_at, created_at, updated_at, sla_notified_at
FROM cases;
DROP TABLE cases;
ALTER TABLE cases_rebuilt RENAME TO cases;
CREATE INDEX cases_queue ON cases (organization_id, status, risk_rank, created_at);
CREATE INDEX cases_contact ON cases (contact_id, status);
COMMIT;
PRAGMA foreign_keys = ON;
