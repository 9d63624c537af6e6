//! `update-dbus`: the libupdate D-Bus service (`org.libupdate.Update1`, docs/reference/dbus.md).
//!
//! Design: the service is a thin edge over [`libupdate::Updater`], like the `update` command.
//! Every call opens the device layout afresh (so a config change made with the CLI is seen at
//! once), runs the library call on a blocking thread, and maps the result: values to the
//! method's reply, errors to one D-Bus error name per stable error kind ([`error`]). Installs run
//! in the background and report through the `Progress`, `Finished` and `StateChanged` signals;
//! they take the same lock as `update --now`, so one install runs at a time whoever started it.
//! State-changing calls are authorized per caller ([`auth`]): root, or polkit where it runs.
//!
//! The binary links zbus; the device binary `update` does not (it has a size limit).

mod auth;
mod error;
mod progress;
mod service;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The libupdate D-Bus service: org.libupdate.Update1 at /org/libupdate/Update1.
#[derive(Debug, Parser)]
#[command(name = "update-dbus", version)]
struct Args {
    /// Operate on a device layout under DIR instead of / (a simulated device), like `update --root`.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Use the session bus instead of the system bus.
    #[arg(long, conflicts_with = "address")]
    session: bool,
    /// Use the bus at this D-Bus address (a private bus for tests) instead of the system bus.
    #[arg(long, value_name = "ADDRESS")]
    address: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("update-dbus: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("update-dbus: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> zbus::Result<()> {
    let builder = match (&args.address, args.session) {
        (Some(a), _) => zbus::connection::Builder::address(a.as_str())?,
        (None, true) => zbus::connection::Builder::session()?,
        (None, false) => zbus::connection::Builder::system()?,
    };
    let root = args.root.unwrap_or_else(|| "/".into());
    let service = service::Update1::new(root);
    let _conn = builder.name(service::BUS_NAME)?.serve_at(service::OBJECT_PATH, service)?.build().await?;
    eprintln!("update-dbus: serving {} at {}", service::BUS_NAME, service::OBJECT_PATH);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| zbus::Error::Failure(format!("cannot watch SIGTERM: {e}")))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Args;

    /// The hand-written man page (docs/man/update-dbus.8, installed by the Debian package)
    /// documents every option.
    #[test]
    fn the_man_page_documents_every_option() {
        let page = include_str!("../../../docs/man/update-dbus.8");
        let cmd = Args::command();
        let mut longs: Vec<&str> = cmd.get_arguments().filter_map(clap::Arg::get_long).collect();
        longs.extend(["help", "version"]);
        for long in longs {
            let roff = format!("\\-\\-{}", long.replace('-', "\\-"));
            assert!(page.contains(&roff), "docs/man/update-dbus.8 does not document --{long}");
        }
        assert!(page.starts_with(".TH update\\-dbus 8 "), "the page's title");
    }
}
