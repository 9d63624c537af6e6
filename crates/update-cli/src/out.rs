//! The printer: every write of the command to stdout goes through [`outln!`](crate::outln).
//!
//! A reader that closes its end early (`update history | head -1`) wants no more output: the
//! command then ends quietly with exit code 0 instead of dying on the broken pipe. Any other
//! write error ends it with the I/O exit code. Text from outside (file names, messages, audit
//! records) is shown through [`update_core::text::Untrusted`] by the callers.

use std::io::Write;

/// Writes formatted text to stdout (see the module docs).
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("update: error: writing to stdout: {e}");
        std::process::exit(i32::from(update_core::ErrorKind::Io.exit_code()));
    }
}

/// `println!` through the printer.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through the printer.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}
