-- Application policies (SPEC §11): named, independently activated plugins. One row per
-- policy, shaped like authorizer_state; `version` grows with every write of the row.
-- AuthZEN subjects are found by email (case-insensitive) or SSO subject (SPEC §11).
CREATE INDEX users_email_lower ON users (LOWER(email));
CREATE INDEX users_sso_subject ON users (sso_subject);

CREATE TABLE policies (
    name             TEXT NOT NULL PRIMARY KEY,
    version          INTEGER NOT NULL,
    active_id        TEXT NOT NULL,
    active_settings  TEXT NOT NULL,
    active_since     INTEGER NOT NULL,
    shadow_id        TEXT,
    shadow_settings  TEXT,
    shadow_since     INTEGER,
    changed_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
