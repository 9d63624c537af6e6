-- hawkBit DDI configData (src/ddi.rs), for PostgreSQL; the same table as migrations/0005
-- (SQLite): the attributes a device reports about itself, at most 100 per device.

CREATE TABLE device_attributes (
    device_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, name)
);
