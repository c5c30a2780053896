-- Accounts, strategies, versioned parameters and the audit trail.
CREATE TABLE IF NOT EXISTS sq_accounts (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    broker TEXT NOT NULL,
    meta TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS sq_strategies (
    account TEXT NOT NULL REFERENCES sq_accounts (id),
    book TEXT NOT NULL,
    description TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (account, book)
);

CREATE TABLE IF NOT EXISTS sq_params (
    account TEXT NOT NULL,
    book TEXT NOT NULL,
    version INTEGER NOT NULL,
    params TEXT NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (account, book, version)
);

CREATE TABLE IF NOT EXISTS sq_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sq_audit_entity ON sq_audit (entity, id);
CREATE INDEX IF NOT EXISTS sq_audit_at ON sq_audit (at_ms);
