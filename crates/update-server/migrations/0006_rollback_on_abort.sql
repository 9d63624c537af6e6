-- Rollouts (issue 14): a deployment created with `rollback-on-abort` tells the devices it told
-- to install to roll back when it is aborted (the assignment action `rollback`).

ALTER TABLE deployments ADD COLUMN rollback_on_abort INTEGER NOT NULL DEFAULT 0 CHECK (rollback_on_abort IN (0, 1));
