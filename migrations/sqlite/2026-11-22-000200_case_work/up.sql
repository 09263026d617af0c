-- Case work (SQLite): the status `waiting` (for the person or a partner), the closure reason of a closed case
-- (or the one a closure request asks for), and the case a duplicate was merged into. SQLite cannot change a
-- CHECK constraint, so the table is rebuilt the way SQLite documents it (foreign keys off, outside the
-- migration runner's transaction — see metadata.toml —, a new table, the rows copied, the old one dropped,
-- the new one renamed): the other tables' foreign keys name `cases`, which then is the new table.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE cases_rebuilt (
    id                   TEXT PRIMARY KEY NOT NULL,
    organization_id      TEXT NOT NULL REFERENCES organizations (id),
    reference            TEXT NOT NULL UNIQUE,
    status               TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'in_progress', 'waiting', 'referred', 'closure_requested', 'closed')),
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
    sla_notified_at      TIMESTAMP,
    closure_reason       TEXT
        CHECK (closure_reason IN ('resolved', 'referred_out', 'no_further_contact', 'duplicate',
                                  'not_trafficking', 'out_of_scope', 'withdrawn_by_person')),
    merged_into          TEXT REFERENCES cases (id)
);
INSERT INTO cases_rebuilt (id, organization_id, reference, status, risk, risk_rank, exploitation_types, child_victim, shelter_needed,
    silent, language, contact_id, assignee_id, follow_up_code_hash, dek_wrapped, key_version, sla_due_at,
    acknowledged_at, acknowledged_by, closed_at, created_at, updated_at, sla_notified_at)
SELECT id, organization_id, reference, status, risk, risk_rank, exploitation_types, child_victim, shelter_needed,
    silent, language, contact_id, assignee_id, follow_up_code_hash, dek_wrapped, key_version, sla_due_at,
    acknowledged_at, acknowledged_by, closed_at, created_at, updated_at, sla_notified_at
FROM cases;
DROP TABLE cases;
ALTER TABLE cases_rebuilt RENAME TO cases;
CREATE INDEX cases_queue ON cases (organization_id, status, risk_rank, created_at);
CREATE INDEX cases_contact ON cases (contact_id, status);
-- The victim profile: coded values (HTCDS / CTDC) that statistics and data exchange need without free text;
-- the name and the region of exploitation (free text) are sealed under the case's data key.
CREATE TABLE case_profiles (
    case_id                  TEXT PRIMARY KEY NOT NULL REFERENCES cases (id),
    organization_id          TEXT NOT NULL REFERENCES organizations (id),
    sex                      TEXT,
    age_band                 TEXT,
    birth_year               INTEGER,
    citizenship              TEXT,
    languages                TEXT NOT NULL DEFAULT '',
    trafficking_status       TEXT,
    means_of_control         TEXT NOT NULL DEFAULT '',
    exploitation_country     TEXT,
    exploitation_region_enc  BLOB,
    recruitment              TEXT NOT NULL DEFAULT '',
    name_enc                 BLOB,
    updated_by               TEXT REFERENCES users (id),
    updated_at               TIMESTAMP NOT NULL
);
COMMIT;
PRAGMA foreign_keys = ON;
