-- Seed data for the Hub reference schema; portable across sqlite.sql, postgres.sql and mysql.sql.
-- Apply once, right after the schema, to an empty database (account ids are then 1, 2, 3).
-- Test-only credentials (PBKDF2-SHA256, 100000 iterations):
--   alice / alice-smoke-pass   (accounts 1 and 2)
--   bob   / bob-smoke-pass     (account 3)
--   carol / carol-smoke-pass   (no account)
INSERT INTO users (username, password_hash) VALUES
    ('alice', 'pbkdf2-sha256$100000$VJRfm6/j0c39KPjyvNIaDg==$MIP7U0a3aqu32SxuSbrfhbvIJSQkBF4qz9Sa72cps4E='),
    ('bob',   'pbkdf2-sha256$100000$cWxkuX76LY3i2Vgv5uMzSQ==$gIkBzNoE59jszPcSipSrxipHwRlqwH8HDmur8hRvKB8='),
    ('carol', 'pbkdf2-sha256$100000$Pfsd8EAO2xWyRaHey7JaZg==$7BRVRsRmufW/9kGg6Nu+Ps+RbDRZXwM/vdyodcgH71c=');

INSERT INTO accounts (owner_user_id, balance_cents) VALUES ((SELECT id FROM users WHERE username = 'alice'), 100000);
INSERT INTO accounts (owner_user_id, balance_cents) VALUES ((SELECT id FROM users WHERE username = 'alice'), 2500);
INSERT INTO accounts (owner_user_id, balance_cents) VALUES ((SELECT id FROM users WHERE username = 'bob'), 50000);

INSERT INTO modules (name, version, manifest) VALUES ('core', '1.0.0', '{"entry":"core.dll","permissions":["read"]}');
INSERT INTO modules (name, version, manifest) VALUES ('billing', '2.3.1', '{"entry":"billing.dll","permissions":["read","write"]}');
