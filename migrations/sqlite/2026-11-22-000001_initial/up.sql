-- Komek initial schema (SQLite). Mirrors migrations/postgres/2026-11-22-000001_initial with portable types:
-- ids are text UUIDs (v7, time-ordered), timestamps are UTC, personal data is application-encrypted BLOBs
-- (ciphertext + wrapped per-record data key + key-encryption-key version), phone lookups use a keyed
-- blind index. Enumerations are TEXT with CHECK constraints so both backends refuse the same bad values.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    country     TEXT,
    kind        TEXT NOT NULL DEFAULT 'hotline' CHECK (kind IN ('hotline', 'shelter')),
    created_at  TIMESTAMP NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);

CREATE TABLE users (
    id                        TEXT PRIMARY KEY NOT NULL,
    organization_id           TEXT NOT NULL REFERENCES organizations (id),
    email                     TEXT NOT NULL UNIQUE,
    display_name              TEXT,
    role                      TEXT NOT NULL
        CHECK (role IN ('admin', 'supervisor', 'operator', 'caseworker', 'shelter_staff')),
    child_protection_trained  BOOLEAN NOT NULL DEFAULT FALSE,
    on_duty                   BOOLEAN NOT NULL DEFAULT FALSE,
    language                  TEXT NOT NULL DEFAULT 'en',
    password_hash             TEXT NOT NULL,
    password_changed_at       TIMESTAMP NOT NULL,
    must_change_password      BOOLEAN NOT NULL DEFAULT TRUE,
    totp_secret_enc           BLOB,
    totp_dek                  BLOB,
    totp_key_version          INTEGER,
    totp_last_step            BIGINT,
    security_stamp            TEXT NOT NULL,
    disabled_at               TIMESTAMP,
    created_at                TIMESTAMP NOT NULL,
    updated_at                TIMESTAMP NOT NULL
);
CREATE INDEX users_organization ON users (organization_id);

CREATE TABLE channels (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    provider         TEXT NOT NULL,
    number           TEXT,
    language         TEXT NOT NULL DEFAULT 'ru',
    secret_enc       BLOB,
    secret_dek       BLOB,
    key_version      INTEGER,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX channels_organization ON channels (organization_id);

CREATE TABLE contacts (
    id                 TEXT PRIMARY KEY NOT NULL,
    organization_id    TEXT NOT NULL REFERENCES organizations (id),
    address_kind       TEXT NOT NULL CHECK (address_kind IN ('phone', 'email', 'web', 'none')),
    address_index      TEXT,
    address_enc        BLOB,
    name_enc           BLOB,
    safe_contact_enc   BLOB,
    dek_wrapped        BLOB NOT NULL,
    key_version        INTEGER NOT NULL,
    first_seen_at      TIMESTAMP NOT NULL,
    last_seen_at       TIMESTAMP NOT NULL,
    UNIQUE (organization_id, address_index)
);

CREATE TABLE cases (
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
    updated_at           TIMESTAMP NOT NULL
);
CREATE INDEX cases_queue ON cases (organization_id, status, risk_rank, created_at);
CREATE INDEX cases_contact ON cases (contact_id, status);

CREATE TABLE reports (
    id                 TEXT PRIMARY KEY NOT NULL,
    organization_id    TEXT NOT NULL REFERENCES organizations (id),
    channel_id         TEXT REFERENCES channels (id),
    source             TEXT NOT NULL CHECK (source IN ('sms', 'voice', 'web', 'operator')),
    provider           TEXT,
    provider_event_id  TEXT,
    contact_id         TEXT REFERENCES contacts (id),
    case_id            TEXT REFERENCES cases (id),
    body_enc           BLOB,
    details_enc        BLOB,
    dek_wrapped        BLOB NOT NULL,
    key_version        INTEGER NOT NULL,
    triage_status      TEXT NOT NULL DEFAULT 'pending'
        CHECK (triage_status IN ('pending', 'done', 'collapsed', 'failed')),
    triage             TEXT,
    collapsed_into     TEXT REFERENCES reports (id),
    received_at        TIMESTAMP NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    UNIQUE (channel_id, provider_event_id)
);
CREATE INDEX reports_organization ON reports (organization_id, created_at);
CREATE INDEX reports_pending ON reports (triage_status, created_at);
CREATE INDEX reports_case ON reports (case_id);

CREATE TABLE case_events (
    id               TEXT PRIMARY KEY NOT NULL,
    case_id          TEXT NOT NULL REFERENCES cases (id),
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    kind             TEXT NOT NULL,
    actor_user_id    TEXT REFERENCES users (id),
    report_id        TEXT REFERENCES reports (id),
    data             TEXT,
    body_enc         BLOB,
    created_at       TIMESTAMP NOT NULL
);
CREATE INDEX case_events_case ON case_events (case_id, id);

CREATE TABLE consents (
    id                   TEXT PRIMARY KEY NOT NULL,
    organization_id      TEXT NOT NULL REFERENCES organizations (id),
    contact_id           TEXT REFERENCES contacts (id),
    case_id              TEXT REFERENCES cases (id),
    purpose              TEXT NOT NULL,
    granted              BOOLEAN NOT NULL,
    source               TEXT NOT NULL,
    recorded_by          TEXT REFERENCES users (id),
    recorded_at          TIMESTAMP NOT NULL,
    withdrawn_at         TIMESTAMP
);
CREATE INDEX consents_case ON consents (case_id);
CREATE INDEX consents_contact ON consents (contact_id);

CREATE TABLE outbox (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT REFERENCES organizations (id),
    kind             TEXT NOT NULL CHECK (kind IN ('email', 'sms')),
    topic            TEXT NOT NULL,
    payload          TEXT NOT NULL,
    payload_enc      BLOB,
    dek_wrapped      BLOB,
    key_version      INTEGER,
    dedupe_key       TEXT UNIQUE,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMP NOT NULL,
    locked_by        TEXT,
    locked_until     TIMESTAMP,
    last_error       TEXT,
    created_at       TIMESTAMP NOT NULL,
    sent_at          TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE audit_log (
    seq              BIGINT PRIMARY KEY NOT NULL,
    at               TIMESTAMP NOT NULL,
    organization_id  TEXT,
    actor_kind       TEXT NOT NULL,
    actor_id         TEXT,
    action           TEXT NOT NULL,
    target_kind      TEXT,
    target_id        TEXT,
    outcome          TEXT NOT NULL,
    details          TEXT,
    request_id       TEXT,
    prev_hash        TEXT NOT NULL,
    hash             TEXT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target_kind, target_id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
