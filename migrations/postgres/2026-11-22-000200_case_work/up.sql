-- Case work: the status `waiting` (for the person or a partner), the closure reason of a closed case (or the
-- one a closure request asks for), and the case a duplicate was merged into.
ALTER TABLE cases DROP CONSTRAINT cases_status_check;
ALTER TABLE cases ADD CONSTRAINT cases_status_check
    CHECK (status IN ('open', 'in_progress', 'waiting', 'referred', 'closure_requested', 'closed'));
ALTER TABLE cases ADD COLUMN closure_reason TEXT
    CHECK (closure_reason IN ('resolved', 'referred_out', 'no_further_contact', 'duplicate', 'not_trafficking',
                              'out_of_scope', 'withdrawn_by_person'));
ALTER TABLE cases ADD COLUMN merged_into TEXT REFERENCES cases (id);

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
    exploitation_region_enc  BYTEA,
    recruitment              TEXT NOT NULL DEFAULT '',
    name_enc                 BYTEA,
    updated_by               TEXT REFERENCES users (id),
    updated_at               TIMESTAMP NOT NULL
);
ALTER TABLE case_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_profiles FORCE ROW LEVEL SECURITY;
-- The same tenant policy as the other case tables (the fail-closed one when it exists).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'komek_row_visible') THEN
        EXECUTE 'CREATE POLICY komek_tenant ON case_profiles USING (komek_row_visible(organization_id)) '
                'WITH CHECK (komek_row_visible(organization_id))';
    ELSE
        EXECUTE 'CREATE POLICY komek_tenant ON case_profiles '
                'USING (coalesce(current_setting(''komek.organization_id'', true), '''') = '''' '
                'OR organization_id = current_setting(''komek.organization_id'', true)) '
                'WITH CHECK (coalesce(current_setting(''komek.organization_id'', true), '''') = '''' '
                'OR organization_id = current_setting(''komek.organization_id'', true))';
    END IF;
END
$$;
