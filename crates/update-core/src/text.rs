//! Showing text that came from outside (a bundle, a repository, a server, a tool's output).
//!
//! Such a string can carry a newline that forges the next log line, or a terminal escape that
//! rewrites what an operator sees. [`Untrusted`] shows it with every control character
//! (C0, DEL, C1, and the Unicode bidirectional overrides) escaped as `\n`, `\t`, `\r`, `\\` or
//! `\u{…}`; everything else, including non-ASCII letters, passes unchanged. Every place a
//! person or a log reads such text — stderr, the log file, syslog, `update history` — prints it
//! through here.

use std::fmt;

/// A string shown with its control characters escaped (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

/// Whether `c` must not reach a terminal or a log line as it is.
fn is_dangerous(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\\' => f.write_str("\\\\")?,
                c if is_dangerous(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

/// `s` with its control characters escaped, as an owned string.
#[must_use]
pub fn escape(s: &str) -> String {
    Untrusted(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_of_control_character_is_escaped() {
        assert_eq!(escape("v1.0\nupdate[1]: FORGED"), "v1.0\\nupdate[1]: FORGED");
        assert_eq!(escape("a\rb\tc\\d"), "a\\rb\\tc\\\\d");
        assert_eq!(escape("\u{1b}[2J\u{1b}]0;title\u{7}"), "\\u{1b}[2J\\u{1b}]0;title\\u{7}");
        assert_eq!(escape("\u{7f}\u{9b}31m"), "\\u{7f}\\u{9b}31m");
        assert_eq!(escape("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(escape("\0"), "\\u{0}");
        assert_eq!(escape("Grüße, 版本 2.0"), "Grüße, 版本 2.0");
    }

    proptest::proptest! {
        #[test]
        fn nothing_dangerous_survives(s in ".*") {
            let shown = escape(&s);
            proptest::prop_assert!(!shown.chars().any(is_dangerous), "{shown:?}");
        }
    }
}
