//! The `wasmgate` binary: parse arguments, run the command, turn a failure
//! into one line on stderr and an exit code.

#![forbid(unsafe_code)]

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = wasmgate::cli::parse(std::env::args_os().skip(1)).and_then(wasmgate::cli::execute);
    if let Err(e) = result {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "wasmgate: {e}");
        std::process::exit(e.exit_code());
    }
}
