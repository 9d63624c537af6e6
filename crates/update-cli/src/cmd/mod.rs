//! One module per subcommand.

pub mod audit;
pub mod config;
pub mod daemon;
pub mod drivers;
pub mod history;
pub mod run;
pub mod slots;
pub mod status;
