//! The `portcullis` binary; all logic is in the library's `cli` module.

fn main() -> std::process::ExitCode {
    portcullis::cli::run()
}
