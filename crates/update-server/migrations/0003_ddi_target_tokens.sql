-- hawkBit Direct Device Integration (issue 14 item 5): each device's target token, kept only
-- as its SHA-256 (src/ddi.rs compares digests in constant time). One token per device; a new
-- one replaces the old. No foreign key: a token may be made before the device's first poll.

CREATE TABLE ddi_target_tokens (
    device_id   TEXT PRIMARY KEY NOT NULL,
    digest      TEXT NOT NULL,                       -- lowercase hex SHA-256 of the token
    created     TEXT NOT NULL,
    created_by  TEXT NOT NULL                        -- who made it (audit log too)
) STRICT;
