-- hawkBit DDI configData (src/ddi.rs): the attributes a device reports about itself (hardware
-- revision, serial number, …), at most 100 per device. No foreign key: as the other per-device
-- tables, rows go with the device's id.

CREATE TABLE device_attributes (
    device_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated     TEXT NOT NULL,
    PRIMARY KEY (device_id, name)
) STRICT;
