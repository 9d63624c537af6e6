-- Rollouts (issue 14): releases, device tags, deployments in waves, and the operator audit
-- log, for PostgreSQL; the same tables as migrations/0002 (SQLite).

CREATE TABLE releases (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      TEXT NOT NULL UNIQUE,                -- the signed repository target's name
    version     TEXT NOT NULL,
    created     TIMESTAMPTZ NOT NULL,
    created_by  TEXT NOT NULL                        -- the operator token's name
);

-- Device groups. No foreign key: a device may be tagged before its first contact.
CREATE TABLE device_tags (
    device_id   TEXT NOT NULL,
    tag         TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('operator', 'certificate')),
    added       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (device_id, tag)
);

CREATE INDEX device_tags_by_tag ON device_tags (tag, device_id);

CREATE TABLE deployments (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    release_id          BIGINT NOT NULL REFERENCES releases (id),
    tag                 TEXT NOT NULL,
    waves               JSONB NOT NULL,              -- the plan as given
    min_wave_interval   BIGINT NOT NULL,             -- seconds
    max_failure_percent BIGINT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('running', 'paused', 'aborted')),
    pause_reason        TEXT,
    current_wave        BIGINT NOT NULL,
    wave_opened         TIMESTAMPTZ NOT NULL,
    waived_wave         BIGINT,                      -- resumed: this wave's failures were accepted
    maintenance_window  JSONB,                       -- {cron, duration-secs, time-zone}, or NULL
    created             TIMESTAMPTZ NOT NULL,
    created_by          TEXT NOT NULL
);

-- The devices of a deployment, fixed when it is created.
CREATE TABLE deployment_devices (
    deployment_id   BIGINT NOT NULL REFERENCES deployments (id),
    device_id       TEXT NOT NULL,
    wave            BIGINT NOT NULL,
    rank            TEXT NOT NULL,                   -- hex SHA-256 of "deployment:device"
    opened          TIMESTAMPTZ,                     -- when the device's wave opened
    assigned        TIMESTAMPTZ,                     -- first told to install
    attempted       BOOLEAN NOT NULL DEFAULT FALSE,  -- reported an update step since
    outcome         TEXT CHECK (outcome IN ('succeeded', 'failed')),
    PRIMARY KEY (deployment_id, device_id)
);

CREATE INDEX deployment_devices_by_device ON deployment_devices (device_id, deployment_id);
CREATE INDEX deployment_devices_by_wave ON deployment_devices (deployment_id, wave);

-- Append-only and hash-chained (crate::audit). `time` stays text: the hash covers it as
-- written.
CREATE TABLE operator_audit (
    seq         BIGINT PRIMARY KEY,                  -- 1, 2, 3, … without gaps
    time        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);

CREATE FUNCTION operator_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'operator_audit is append-only';
END
$$;

CREATE TRIGGER operator_audit_no_change BEFORE UPDATE OR DELETE ON operator_audit
    FOR EACH ROW EXECUTE FUNCTION operator_audit_append_only();

CREATE TRIGGER operator_audit_no_truncate BEFORE TRUNCATE ON operator_audit
    FOR EACH STATEMENT EXECUTE FUNCTION operator_audit_append_only();
