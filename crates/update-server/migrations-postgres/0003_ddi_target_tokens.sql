-- hawkBit Direct Device Integration (issue 14 item 5), for PostgreSQL; the same table as
-- migrations/0003 (SQLite).

CREATE TABLE ddi_target_tokens (
    device_id   TEXT PRIMARY KEY NOT NULL,
    digest      TEXT NOT NULL,                       -- lowercase hex SHA-256 of the token
    created     TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL                        -- who made it (audit log too)
);
