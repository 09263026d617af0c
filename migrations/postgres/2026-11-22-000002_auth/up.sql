-- Staff sessions and refresh tokens (PostgreSQL), and row-level security on the case tables.
-- Mirrors migrations/sqlite/2026-11-22-000002_auth for the tables.
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

-- Row-level security: a second wall behind the application's own `organization_id` filters. A staff
-- request runs its transaction with `SET LOCAL komek.organization_id = '<org>'` (Db::write_as / run_as),
-- and then sees only its organization's rows, even through a query that forgets the filter. Webhooks and
-- background workers run without a staff member: with the setting unset or empty, rows pass. FORCE makes
-- the policy apply to the table owner too; superusers and BYPASSRLS roles still bypass it, so the service
-- must connect as an ordinary role (see README, "Access and audit").
ALTER TABLE cases ENABLE ROW LEVEL SECURITY;
ALTER TABLE cases FORCE ROW LEVEL SECURITY;
CREATE POLICY komek_tenant ON cases
    USING (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true))
    WITH CHECK (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true));

ALTER TABLE case_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_events FORCE ROW LEVEL SECURITY;
CREATE POLICY komek_tenant ON case_events
    USING (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true))
    WITH CHECK (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true));

ALTER TABLE reports ENABLE ROW LEVEL SECURITY;
ALTER TABLE reports FORCE ROW LEVEL SECURITY;
CREATE POLICY komek_tenant ON reports
    USING (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true))
    WITH CHECK (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true));

ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts FORCE ROW LEVEL SECURITY;
CREATE POLICY komek_tenant ON contacts
    USING (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true))
    WITH CHECK (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true));

ALTER TABLE consents ENABLE ROW LEVEL SECURITY;
ALTER TABLE consents FORCE ROW LEVEL SECURITY;
CREATE POLICY komek_tenant ON consents
    USING (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true))
    WITH CHECK (coalesce(current_setting('komek.organization_id', true), '') = ''
           OR organization_id = current_setting('komek.organization_id', true));
