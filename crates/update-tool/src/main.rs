//! `update-tool`: keys and bundles, for build machines (see the library crate).

fn main() -> std::process::ExitCode {
    update_tool::main()
}
