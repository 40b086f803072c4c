// Expected: 502 `exit-code` — prints a valid response, then exits with 3:
// a non-zero exit discards the output.
fn main() {
    println!(r#"{{"status":200,"body":"should not be sent"}}"#);
    std::process::exit(3);
}
