-- IVR: the state of each call (so that any instance can answer its next step and a restart mid-call
-- continues it), the duty rosters the danger and child paths dial, recordings uploaded with a request
-- (FreeSWITCH), and the menu path a voice report carries into triage. Personal data (digits, recording
-- addresses, roster numbers, audio) is application-encrypted; step names, counters and the menu path are
-- not personal (the path holds the same facts as the case's own flags) and stay readable.
CREATE TABLE calls (
    id                TEXT PRIMARY KEY NOT NULL,
    organization_id   TEXT NOT NULL REFERENCES organizations (id),
    channel_id        TEXT NOT NULL REFERENCES channels (id),
    provider          TEXT NOT NULL,
    provider_call_id  TEXT NOT NULL,
    step              TEXT NOT NULL
        CHECK (step IN ('language', 'menu', 'dial', 'record', 'silent', 'done')),
    seq               INTEGER NOT NULL,
    language          TEXT NOT NULL,
    menu_path         TEXT NOT NULL DEFAULT '',
    menu_plays        INTEGER NOT NULL DEFAULT 0,
    no_input          INTEGER NOT NULL DEFAULT 0,
    roster_kind       TEXT CHECK (roster_kind IN ('general', 'child')),
    dial_index        INTEGER NOT NULL DEFAULT 0,
    dial_outcome      TEXT,
    contact_id        TEXT REFERENCES contacts (id),
    details_enc       BYTEA,
    dek_wrapped       BYTEA NOT NULL,
    key_version       INTEGER NOT NULL,
    report_id         TEXT REFERENCES reports (id),
    hangup_cause      TEXT,
    duration_secs     INTEGER,
    started_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL,
    ended_at          TIMESTAMP,
    UNIQUE (channel_id, provider_call_id)
);
CREATE INDEX calls_unreported ON calls (report_id, updated_at);

CREATE TABLE duty_rosters (
    id               TEXT PRIMARY KEY NOT NULL,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    kind             TEXT NOT NULL CHECK (kind IN ('general', 'child')),
    numbers_enc      BYTEA NOT NULL,
    dek_wrapped      BYTEA NOT NULL,
    key_version      INTEGER NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    UNIQUE (organization_id, kind)
);

CREATE TABLE call_recordings (
    id            TEXT PRIMARY KEY NOT NULL,
    call_id       TEXT NOT NULL REFERENCES calls (id),
    audio_enc     BYTEA NOT NULL,
    content_type  TEXT,
    size_bytes    BIGINT NOT NULL,
    dek_wrapped   BYTEA NOT NULL,
    key_version   INTEGER NOT NULL,
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX call_recordings_call ON call_recordings (call_id);

ALTER TABLE reports ADD COLUMN ivr_path TEXT;
