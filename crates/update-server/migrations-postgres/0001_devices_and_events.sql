-- Devices and their events (update-server, issue 3), for PostgreSQL. The same tables as
-- migrations/0001 (SQLite) with PostgreSQL's types: TIMESTAMPTZ (microseconds), JSONB,
-- BOOLEAN, identity columns.

CREATE TABLE devices (
    id                  TEXT PRIMARY KEY,            -- the certificate's subject CN
    compatible          TEXT,
    version             TEXT,
    booted              TEXT,
    primary_slot        TEXT,
    slots               JSONB NOT NULL DEFAULT '[]', -- [{name, state, version}]
    first_seen          TIMESTAMPTZ NOT NULL,
    last_checkin        TIMESTAMPTZ,                 -- NULL until the first check-in
    check_now           BOOLEAN NOT NULL DEFAULT FALSE, -- an operator asked; cleared by the next check-in
    check_now_requested TIMESTAMPTZ
);

CREATE TABLE events (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- arrival order, never reused
    device_id   TEXT NOT NULL REFERENCES devices (id),
    kind        TEXT NOT NULL,
    version     TEXT,
    reason      TEXT,
    device_time TIMESTAMPTZ NOT NULL,                -- the device's clock
    received    TIMESTAMPTZ NOT NULL                 -- the server's clock
);

CREATE INDEX events_by_device ON events (device_id, seq);
