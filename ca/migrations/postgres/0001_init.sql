-- smtrust-ca schema v1 (PostgreSQL). Keep in step with migrations/sqlite/0001_init.sql.
CREATE TABLE IF NOT EXISTS ca_certs (
    serial      TEXT PRIMARY KEY,          -- 32 hex digits; unique across every issuer
    issuer      TEXT NOT NULL,
    status      TEXT NOT NULL,             -- reserved | active | hold | revoked
    device_id   TEXT,
    profile     TEXT,
    der         BYTEA,
    not_after   BIGINT,
    reserved_at BIGINT NOT NULL,
    revoked_at  BIGINT,
    reason      BIGINT,
    changed_at  BIGINT NOT NULL,
    resumed     BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS ca_certs_active_device
    ON ca_certs (issuer, device_id) WHERE status IN ('active', 'hold') AND device_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ca_certs_changed ON ca_certs (issuer, changed_at);
CREATE INDEX IF NOT EXISTS ca_certs_issuer_status ON ca_certs (issuer, status);
CREATE TABLE IF NOT EXISTS ca_crls (
    issuer      TEXT NOT NULL,
    number      BIGINT NOT NULL,
    delta       BIGINT NOT NULL,
    this_update BIGINT NOT NULL,
    der         BYTEA NOT NULL,
    PRIMARY KEY (issuer, number)
);
