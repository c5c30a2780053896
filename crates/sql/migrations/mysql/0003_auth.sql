-- Users, per-account grants, API keys, sessions with their refresh tokens
-- and the access log, for the REST API. Only hashes are kept, never a
-- secret: Argon2id PHC strings for passwords, SHA-256 (hex) for API-key
-- secrets and refresh tokens. Names, ids and hashes are compared exactly:
-- binary collation, as in 0001. Times are milliseconds since the epoch.
CREATE TABLE IF NOT EXISTS sq_users (
    name VARCHAR(64) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    role VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
    status VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
    password_hash VARCHAR(512) COLLATE utf8mb4_bin NOT NULL,
    failed_logins BIGINT NOT NULL,
    locked_until_ms BIGINT NULL,
    tokens_after_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- A user's right on one account: 'read' or 'write'.
CREATE TABLE IF NOT EXISTS sq_grants (
    user_name VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    account VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    access VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (user_name, account),
    CONSTRAINT sq_grants_user FOREIGN KEY (user_name) REFERENCES sq_users (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- accounts: a JSON array of account codes, NULL for all of the user's.
CREATE TABLE IF NOT EXISTS sq_api_keys (
    id VARCHAR(32) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    user_name VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    label VARCHAR(128) NOT NULL,
    accounts MEDIUMTEXT NULL,
    secret_hash VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NULL,
    revoked BIGINT NOT NULL,
    KEY sq_api_keys_user_created (user_name, created_ms),
    CONSTRAINT sq_api_keys_user FOREIGN KEY (user_name) REFERENCES sq_users (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS sq_sessions (
    id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    user_name VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    revoked BIGINT NOT NULL,
    KEY sq_sessions_user_revoked (user_name, revoked),
    CONSTRAINT sq_sessions_user FOREIGN KEY (user_name) REFERENCES sq_users (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Every refresh token a session has had: its one 'current' token and the
-- 'used' ones rotated away, remembered so that a replay is recognised.
CREATE TABLE IF NOT EXISTS sq_refresh_tokens (
    token_hash VARCHAR(64) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    session_id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    state VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
    created_ms BIGINT NOT NULL,
    KEY sq_refresh_tokens_session_id (session_id),
    CONSTRAINT sq_refresh_tokens_session FOREIGN KEY (session_id) REFERENCES sq_sessions (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS sq_access_log (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    principal VARCHAR(160) COLLATE utf8mb4_bin NOT NULL,
    method VARCHAR(16) COLLATE utf8mb4_bin NOT NULL,
    route VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
    account VARCHAR(64) COLLATE utf8mb4_bin NULL,
    status BIGINT NOT NULL,
    ip VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    KEY sq_access_log_at (at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
