-- Users, per-account grants, API keys, sessions with their refresh tokens
-- and the access log, for the REST API. Only hashes are kept, never a
-- secret: Argon2id PHC strings for passwords, SHA-256 (hex) for API-key
-- secrets and refresh tokens. Times are milliseconds since the epoch.
CREATE TABLE IF NOT EXISTS sq_users (
    name TEXT NOT NULL PRIMARY KEY,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    failed_logins INTEGER NOT NULL,
    locked_until_ms INTEGER NULL,
    tokens_after_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);

-- A user's right on one account: 'read' or 'write'.
CREATE TABLE IF NOT EXISTS sq_grants (
    user_name TEXT NOT NULL REFERENCES sq_users (name),
    account TEXT NOT NULL,
    access TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (user_name, account)
);

-- accounts: a JSON array of account codes, NULL for all of the user's.
CREATE TABLE IF NOT EXISTS sq_api_keys (
    id TEXT NOT NULL PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES sq_users (name),
    label TEXT NOT NULL,
    accounts TEXT NULL,
    secret_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NULL,
    revoked INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sq_api_keys_user_created ON sq_api_keys (user_name, created_ms);

CREATE TABLE IF NOT EXISTS sq_sessions (
    id TEXT NOT NULL PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES sq_users (name),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sq_sessions_user_revoked ON sq_sessions (user_name, revoked);

-- Every refresh token a session has had: its one 'current' token and the
-- 'used' ones rotated away, remembered so that a replay is recognised.
CREATE TABLE IF NOT EXISTS sq_refresh_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sq_sessions (id),
    state TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sq_refresh_tokens_session_id ON sq_refresh_tokens (session_id);

CREATE TABLE IF NOT EXISTS sq_access_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    principal TEXT NOT NULL,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    account TEXT NULL,
    status INTEGER NOT NULL,
    ip TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sq_access_log_at ON sq_access_log (at_ms);
