-- hawkBit DDI cancel (src/ddi.rs), for PostgreSQL; the same column as migrations/0004
-- (SQLite): how a device answered the cancelAction of an aborted deployment it had been told
-- to install. NULL: not answered; 'canceled': it stopped; 'rejected': it goes on.

ALTER TABLE deployment_devices ADD COLUMN cancel_answer TEXT CHECK (cancel_answer IN ('canceled', 'rejected'));
