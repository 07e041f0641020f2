-- Application policies (SPEC §11): named, independently activated plugins. One row per
-- policy, shaped like authorizer_state; `version` grows with every write of the row.
-- AuthZEN subjects are found by email (case-insensitive) or SSO subject (SPEC §11).
CREATE INDEX users_email_lower ON users (LOWER(email));
CREATE INDEX users_sso_subject ON users (sso_subject);

CREATE TABLE policies (
    name             TEXT PRIMARY KEY,
    version          BIGINT NOT NULL,
    active_id        TEXT NOT NULL,
    active_settings  TEXT NOT NULL,
    active_since     BIGINT NOT NULL,
    shadow_id        TEXT,
    shadow_settings  TEXT,
    shadow_since     BIGINT,
    changed_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);

-- Other servers load a changed policy at once (host/store/src/changes.rs).
CREATE TRIGGER policies_notify AFTER INSERT OR UPDATE OR DELETE ON policies
    FOR EACH ROW EXECUTE FUNCTION portcullis_notify_auth();
