-- Uploaded plugins (by SHA-256 digest) and the authorizer every server sharing this
-- database should run. `version` grows with every change so servers notice.
CREATE TABLE plugins (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    digest         TEXT NOT NULL UNIQUE,
    size           INTEGER NOT NULL,
    world_version  TEXT NOT NULL,
    wasm           BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    created_by     TEXT NOT NULL
);

CREATE TABLE authorizer_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    version          INTEGER NOT NULL,
    active_id        TEXT NOT NULL,
    active_settings  TEXT NOT NULL,
    active_since     INTEGER NOT NULL,
    shadow_id        TEXT,
    shadow_settings  TEXT,
    shadow_since     INTEGER,
    changed_by       TEXT NOT NULL
);
