// Expected: 201, body `made` — prints a valid response, then
// `std::process::exit(0)` (WASI `proc_exit(0)`): a zero exit is success.
fn main() {
    println!(r#"{{"status":201,"body":"made"}}"#);
    std::process::exit(0);
}
