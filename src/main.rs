//! The `wasmgate` binary: parse arguments, run the command, turn a failure
//! into one line on stderr and an exit code.

#![forbid(unsafe_code)]

fn main() {
    wasmgate::cli::init_logging();
    let result = wasmgate::cli::parse(std::env::args_os().skip(1)).and_then(wasmgate::cli::execute);
    if let Err(e) = result {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "wasmgate: {e}");
        std::process::exit(e.exit_code());
    }
}
