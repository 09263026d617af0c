-- Staff sessions and refresh tokens (SQLite). Mirrors migrations/postgres/2026-11-22-000002_auth.
--
-- A session is one login: every access token names its session (`sid`) and is refused once the session is
-- revoked (logout, disable, password change, second-factor reset, refresh-token reuse) or past its absolute
-- end. Refresh tokens are random, stored only as SHA-256 hashes, rotated on every use; presenting a used one
-- again revokes the whole session (the family).

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY NOT NULL,
    user_id          TEXT NOT NULL REFERENCES users (id),
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    created_at       TIMESTAMP NOT NULL,
    expires_at       TIMESTAMP NOT NULL,
    revoked_at       TIMESTAMP,
    revoked_reason   TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
