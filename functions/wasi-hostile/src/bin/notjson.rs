// Expected: 200 text/plain with this line; 502 with `plain_output = "refuse"`.
fn main() {
    println!("this is not json");
}
