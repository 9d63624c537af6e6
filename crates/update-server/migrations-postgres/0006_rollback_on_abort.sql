-- Rollouts (issue 14), for PostgreSQL; the same column as migrations/0006 (SQLite): a
-- deployment created with `rollback-on-abort` tells the devices it told to install to roll
-- back when it is aborted.

ALTER TABLE deployments ADD COLUMN rollback_on_abort BOOLEAN NOT NULL DEFAULT FALSE;
