-- Hub reference schema, MySQL 8 / MariaDB 10.5+ (InnoDB). Used by tests/hubservice (see docs/smoke-tests.md).
-- Apply to an empty database, then optionally schema/seed.sql.

CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(190) NOT NULL UNIQUE,
    password_hash VARCHAR(255) NOT NULL,          -- pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE sessions (
    token_hash      CHAR(64)    NOT NULL PRIMARY KEY,  -- SHA-256 (hex) of the bearer token; the token itself is never stored
    user_id         BIGINT      NOT NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    expires_at_unix BIGINT      NOT NULL,
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE modules (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name         VARCHAR(190) NOT NULL UNIQUE,
    version      VARCHAR(64)  NOT NULL,
    installed_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    manifest     JSON         NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE accounts (
    id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    owner_user_id BIGINT NOT NULL,
    balance_cents BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT ck_accounts_balance CHECK (balance_cents >= 0),
    CONSTRAINT fk_accounts_owner FOREIGN KEY (owner_user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE transactions (
    id           BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    from_account BIGINT      NOT NULL,
    to_account   BIGINT      NOT NULL,
    amount_cents BIGINT      NOT NULL,
    created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    CONSTRAINT ck_transactions_amount CHECK (amount_cents > 0),
    CONSTRAINT fk_transactions_from FOREIGN KEY (from_account) REFERENCES accounts(id),
    CONSTRAINT fk_transactions_to FOREIGN KEY (to_account) REFERENCES accounts(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
