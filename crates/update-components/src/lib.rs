//! The built-in component handlers and the out-of-tree handler client (docs/components.md).
//!
//! Each module implements [`update_core::component::Handler`] for one kind. The engine
//! (`update-native`) plans the transaction, feeds each handler verified payload bytes and journals
//! the phases; a handler only knows its own target.

pub mod app;
pub mod data;
pub mod external;
pub mod files;
pub mod firmware;
pub mod fwupd;
pub mod payload;

use update_core::Paths;
use update_core::component::{Handler, Kind};

/// The handler of `kind` on this device, if one is built in or installed (an out-of-tree
/// handler is an executable `/usr/lib/update/handlers/<kind>` under the root).
#[must_use]
pub fn handler_for(kind: &Kind, paths: &Paths) -> Option<Box<dyn Handler>> {
    match kind {
        Kind::Files => Some(Box::new(files::FilesHandler::new())),
        Kind::App => Some(Box::new(app::AppHandler::new())),
        Kind::Data => Some(Box::new(data::DataHandler::new())),
        Kind::Firmware => Some(Box::new(firmware::Firmware::new())),
        Kind::Fwupd => Some(Box::new(fwupd::FwupdHandler::new())),
        Kind::External(k) => {
            let program = std::path::Path::new(external::HANDLER_DIR).join(k);
            update_core::process::locate_under(paths.root(), &program)
                .map(|_| Box::new(external::ExternalHandler::new(k)) as Box<dyn Handler>)
        }
        _ => None,
    }
}
