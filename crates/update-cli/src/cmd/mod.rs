//! One module per subcommand.

pub mod config;
pub mod daemon;
pub mod run;
pub mod status;
