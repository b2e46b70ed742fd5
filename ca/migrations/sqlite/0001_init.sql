-- smtrust-ca schema v1 (SQLite). Keep in step with migrations/postgres/0001_init.sql.
CREATE TABLE IF NOT EXISTS ca_certs (
    serial      TEXT PRIMARY KEY,          -- 32 hex digits; unique across every issuer
    issuer      TEXT NOT NULL,
    status      TEXT NOT NULL,             -- reserved | active | hold | revoked
    device_id   TEXT,
    profile     TEXT,
    der         BLOB,
    not_after   INTEGER,
    reserved_at INTEGER NOT NULL,
    revoked_at  INTEGER,
    reason      INTEGER,
    changed_at  INTEGER NOT NULL,
    resumed     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS ca_certs_active_device
    ON ca_certs (issuer, device_id) WHERE status IN ('active', 'hold') AND device_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS ca_certs_changed ON ca_certs (issuer, changed_at);
CREATE INDEX IF NOT EXISTS ca_certs_issuer_status ON ca_certs (issuer, status);
CREATE TABLE IF NOT EXISTS ca_crls (
    issuer      TEXT NOT NULL,
    number      INTEGER NOT NULL,
    delta       INTEGER NOT NULL,
    this_update INTEGER NOT NULL,
    der         BLOB NOT NULL,
    PRIMARY KEY (issuer, number)
);
