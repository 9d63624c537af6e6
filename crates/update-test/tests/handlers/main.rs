//! Component handlers with real parts: the shared handler suite against the `data`, `files`,
//! `app` and `firmware` (a simulated MCU on a pty) handlers and the example out-of-tree handler,
//! the data policies, and the out-of-tree protocol's refusals.

mod data;
mod external;
mod files;
mod firmware;
mod support;
