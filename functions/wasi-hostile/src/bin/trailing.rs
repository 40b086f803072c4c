// A response object followed by more output is not one response object:
// 200 text/plain with all of stdout; 502 with `plain_output = "refuse"`.
fn main() {
    println!(r#"{{"status":200,"body":"ok"}}"#);
    println!("garbage after");
}
