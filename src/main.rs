//! The `tally` binary: parses the command line and hands over to [`tally::cli`].

fn main() -> std::process::ExitCode {
    tally::cli::run()
}
