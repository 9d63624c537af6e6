-- Devices and their events (update-server, issue 3). Times are RFC 3339 UTC text.

CREATE TABLE devices (
    id                  TEXT PRIMARY KEY NOT NULL,   -- the certificate's subject CN
    compatible          TEXT,
    version             TEXT,
    booted              TEXT,
    primary_slot        TEXT,
    slots               TEXT NOT NULL DEFAULT '[]',  -- JSON array of {name, state, version}
    first_seen          TEXT NOT NULL,
    last_checkin        TEXT,                        -- NULL until the first check-in
    check_now           INTEGER NOT NULL DEFAULT 0,  -- an operator asked; cleared by the next check-in
    check_now_requested TEXT
) STRICT;

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,   -- arrival order, never reused
    device_id   TEXT NOT NULL REFERENCES devices (id),
    kind        TEXT NOT NULL,
    version     TEXT,
    reason      TEXT,
    device_time TEXT NOT NULL,                       -- the device's clock
    received    TEXT NOT NULL                        -- the server's clock
) STRICT;

CREATE INDEX events_by_device ON events (device_id, seq);
