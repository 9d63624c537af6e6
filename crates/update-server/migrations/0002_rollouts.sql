-- Rollouts (issue 14): releases, device tags, deployments in waves, and the operator audit
-- log. Times are RFC 3339 UTC text, as in 0001.

CREATE TABLE releases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT NOT NULL UNIQUE,                -- the signed repository target's name
    version     TEXT NOT NULL,
    created     TEXT NOT NULL,
    created_by  TEXT NOT NULL                        -- the operator token's name
) STRICT;

-- Device groups. No foreign key: a device may be tagged before its first contact.
CREATE TABLE device_tags (
    device_id   TEXT NOT NULL,
    tag         TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('operator', 'certificate')),
    added       TEXT NOT NULL,
    PRIMARY KEY (device_id, tag)
) STRICT;

CREATE INDEX device_tags_by_tag ON device_tags (tag, device_id);

CREATE TABLE deployments (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id          INTEGER NOT NULL REFERENCES releases (id),
    tag                 TEXT NOT NULL,
    waves               TEXT NOT NULL,               -- JSON: the plan as given
    min_wave_interval   INTEGER NOT NULL,            -- seconds
    max_failure_percent INTEGER NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('running', 'paused', 'aborted')),
    pause_reason        TEXT,
    current_wave        INTEGER NOT NULL,
    wave_opened         TEXT NOT NULL,
    waived_wave         INTEGER,                     -- resumed: this wave's failures were accepted
    maintenance_window  TEXT,                        -- JSON {cron, duration-secs, time-zone}, or NULL
    created             TEXT NOT NULL,
    created_by          TEXT NOT NULL
) STRICT;

-- The devices of a deployment, fixed when it is created.
CREATE TABLE deployment_devices (
    deployment_id   INTEGER NOT NULL REFERENCES deployments (id),
    device_id       TEXT NOT NULL,
    wave            INTEGER NOT NULL,
    rank            TEXT NOT NULL,                   -- hex SHA-256 of "deployment:device"
    opened          TEXT,                            -- when the device's wave opened
    assigned        TEXT,                            -- first told to install
    attempted       INTEGER NOT NULL DEFAULT 0,      -- reported an update step since
    outcome         TEXT CHECK (outcome IN ('succeeded', 'failed')),
    PRIMARY KEY (deployment_id, device_id)
) STRICT;

CREATE INDEX deployment_devices_by_device ON deployment_devices (device_id, deployment_id);
CREATE INDEX deployment_devices_by_wave ON deployment_devices (deployment_id, wave);

-- Append-only and hash-chained (crate::audit): each row holds the previous row's hash and
-- its own over that and its content.
CREATE TABLE operator_audit (
    seq         INTEGER PRIMARY KEY,                 -- 1, 2, 3, … without gaps
    time        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
) STRICT;

CREATE TRIGGER operator_audit_no_update BEFORE UPDATE ON operator_audit
BEGIN
    SELECT RAISE(ABORT, 'operator_audit is append-only');
END;

CREATE TRIGGER operator_audit_no_delete BEFORE DELETE ON operator_audit
BEGIN
    SELECT RAISE(ABORT, 'operator_audit is append-only');
END;
