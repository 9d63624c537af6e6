//! The `update` binary.

fn main() -> std::process::ExitCode {
    update_cli::main()
}
