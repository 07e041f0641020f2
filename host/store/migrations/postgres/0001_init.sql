-- Portcullis schema v1 (PostgreSQL). Same shape as the SQLite schema; see there.
CREATE TABLE accounts (
    name        TEXT PRIMARY KEY,
    email       TEXT,
    type        TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    username              TEXT PRIMARY KEY,
    account               TEXT NOT NULL REFERENCES accounts(name),
    email                 TEXT,
    roles                 TEXT NOT NULL DEFAULT '[]',
    attributes            TEXT NOT NULL DEFAULT '{}',
    password_hash         TEXT,
    must_change_password  BIGINT NOT NULL DEFAULT 0,
    failed_logins         BIGINT NOT NULL DEFAULT 0,
    locked_until          BIGINT,
    last_login_at         BIGINT,
    access_token_status   TEXT,
    created_at            BIGINT NOT NULL
);
CREATE INDEX users_account ON users(account, username);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL REFERENCES users(username),
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    expires_at    BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_user ON api_keys(username);

CREATE TABLE iact (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    digest      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE audit (
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit(at);
