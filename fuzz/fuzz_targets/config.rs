//! `update.toml` (`Config::parse`: TOML, then every value's own check); a config that parses
//! must survive writing back (`to_toml`) and parsing again unchanged.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use update_core::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("/etc/update/update.toml");
    let Ok(config) = Config::parse(text, path) else { return };
    let written = config.to_toml();
    match Config::parse(&written, path) {
        Ok(again) => assert_eq!(again.to_toml(), written, "a written config reads back differently"),
        Err(e) => panic!("a config that parsed was written as one that does not: {e}\n{written}"),
    }
});
