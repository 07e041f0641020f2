-- Uploaded plugins (by SHA-256 digest) and the authorizer every server sharing this
-- database should run. `version` grows with every change so servers notice.
CREATE TABLE plugins (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    digest         TEXT NOT NULL UNIQUE,
    size           BIGINT NOT NULL,
    world_version  TEXT NOT NULL,
    wasm           BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    created_by     TEXT NOT NULL
);

CREATE TABLE authorizer_state (
    id               BIGINT PRIMARY KEY CHECK (id = 1),
    version          BIGINT NOT NULL,
    active_id        TEXT NOT NULL,
    active_settings  TEXT NOT NULL,
    active_since     BIGINT NOT NULL,
    shadow_id        TEXT,
    shadow_settings  TEXT,
    shadow_since     BIGINT,
    changed_by       TEXT NOT NULL
);
