-- hawkBit DDI cancel (src/ddi.rs): how a device answered the cancelAction of an aborted
-- deployment it had been told to install. NULL: not answered (or never asked).
-- 'canceled': it stopped, the action is closed; 'rejected': it goes on, the action stays open.

ALTER TABLE deployment_devices ADD COLUMN cancel_answer TEXT CHECK (cancel_answer IN ('canceled', 'rejected'));
