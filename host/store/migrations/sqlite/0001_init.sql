-- Portcullis schema v1 (SQLite). Times are Unix milliseconds (UTC); roles and attributes
-- are JSON text. Secrets are never stored: API keys and the IACT as SHA-256 digests,
-- passwords as argon2id PHC strings.
CREATE TABLE accounts (
    name        TEXT PRIMARY KEY,
    email       TEXT,
    type        TEXT NOT NULL,
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    username              TEXT PRIMARY KEY,
    account               TEXT NOT NULL REFERENCES accounts(name),
    email                 TEXT,
    roles                 TEXT NOT NULL DEFAULT '[]',
    attributes            TEXT NOT NULL DEFAULT '{}',
    password_hash         TEXT,
    must_change_password  INTEGER NOT NULL DEFAULT 0,
    failed_logins         INTEGER NOT NULL DEFAULT 0,
    locked_until          INTEGER,
    last_login_at         INTEGER,
    access_token_status   TEXT,
    created_at            INTEGER NOT NULL
);
CREATE INDEX users_account ON users(account, username);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL REFERENCES users(username),
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    digest        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    expires_at    INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_user ON api_keys(username);

CREATE TABLE iact (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    digest      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER
);

CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit(at);
