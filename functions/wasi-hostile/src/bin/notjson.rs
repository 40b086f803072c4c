// Expected: 502 `bad-response` — stdout is not a JSON object.
fn main() {
    println!("this is not json");
}
