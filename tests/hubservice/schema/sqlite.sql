-- Hub reference schema, SQLite. Used by tests/hubservice (see docs/smoke-tests.md).
-- Apply to an empty database, then optionally schema/seed.sql.
PRAGMA foreign_keys = ON;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,               -- pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>
    created_at    TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE sessions (
    token_hash      TEXT    PRIMARY KEY,           -- SHA-256 (hex) of the bearer token; the token itself is never stored
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires_at_unix INTEGER NOT NULL
);

CREATE TABLE modules (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    version      TEXT    NOT NULL,
    installed_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP,
    manifest     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(manifest))
);

CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_user_id INTEGER NOT NULL REFERENCES users(id),
    balance_cents INTEGER NOT NULL DEFAULT 0 CHECK (balance_cents >= 0)
);

CREATE TABLE transactions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    from_account INTEGER NOT NULL REFERENCES accounts(id),
    to_account   INTEGER NOT NULL REFERENCES accounts(id),
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    created_at   TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX ix_sessions_user ON sessions(user_id);
CREATE INDEX ix_accounts_owner ON accounts(owner_user_id);
CREATE INDEX ix_transactions_from ON transactions(from_account);
CREATE INDEX ix_transactions_to ON transactions(to_account);
