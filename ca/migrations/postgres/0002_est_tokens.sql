-- smtrust-ca schema v2 (PostgreSQL): EST enrollment tokens. Keep in step with migrations/sqlite/0002_est_tokens.sql.
-- Only SM3(domain || token) is stored; the token itself exists only where it was printed.
CREATE TABLE IF NOT EXISTS est_tokens (
    token_hash  TEXT PRIMARY KEY,          -- 64 hex digits
    issuer      TEXT NOT NULL,             -- issuing CA label the token is good for
    device_id   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT                     -- set once, by the request that uses it (UPDATE ... WHERE used_at IS NULL)
);
CREATE INDEX IF NOT EXISTS est_tokens_device ON est_tokens (issuer, device_id);
