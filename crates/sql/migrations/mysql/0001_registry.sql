-- Accounts, strategies, versioned parameters and the audit trail.
-- Ids are case-sensitive, as in the files: binary collation on the key
-- columns. Text columns keep a text collation (a binary one makes MySQL
-- report them as BLOB).
CREATE TABLE IF NOT EXISTS sq_accounts (
    id VARCHAR(64) COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    name VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
    broker VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    meta MEDIUMTEXT NOT NULL,
    updated_ms BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS sq_strategies (
    account VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    book VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    description TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (account, book),
    CONSTRAINT sq_strategies_account FOREIGN KEY (account) REFERENCES sq_accounts (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS sq_params (
    account VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    book VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    version BIGINT NOT NULL,
    params MEDIUMTEXT NOT NULL,
    actor VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    note TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account, book, version)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS sq_audit (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
    action VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
    entity VARCHAR(160) COLLATE utf8mb4_bin NOT NULL,
    detail MEDIUMTEXT NOT NULL,
    KEY sq_audit_entity (entity, id),
    KEY sq_audit_at (at_ms)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
