-- Hub reference schema, PostgreSQL (12+). Used by tests/hubservice (see docs/smoke-tests.md).
-- Apply to an empty database, then optionally schema/seed.sql.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT        NOT NULL UNIQUE,
    password_hash TEXT        NOT NULL,           -- pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    token_hash      TEXT        PRIMARY KEY,      -- SHA-256 (hex) of the bearer token; the token itself is never stored
    user_id         BIGINT      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at_unix BIGINT      NOT NULL
);

CREATE TABLE modules (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT        NOT NULL UNIQUE,
    version      TEXT        NOT NULL,
    installed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    manifest     JSONB       NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE accounts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_user_id BIGINT NOT NULL REFERENCES users(id),
    balance_cents BIGINT NOT NULL DEFAULT 0 CHECK (balance_cents >= 0)
);

CREATE TABLE transactions (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_account BIGINT      NOT NULL REFERENCES accounts(id),
    to_account   BIGINT      NOT NULL REFERENCES accounts(id),
    amount_cents BIGINT      NOT NULL CHECK (amount_cents > 0),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX ix_sessions_user ON sessions(user_id);
CREATE INDEX ix_accounts_owner ON accounts(owner_user_id);
CREATE INDEX ix_transactions_from ON transactions(from_account);
CREATE INDEX ix_transactions_to ON transactions(to_account);
