// Expected: 502 `bad-response` — a valid response object followed by more
// output: stdout must hold exactly one JSON object.
fn main() {
    println!(r#"{{"status":200,"body":"ok"}}"#);
    println!("garbage after");
}
