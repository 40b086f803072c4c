// Expected: 200 `application/json`, and every field of the body is an
// `Err(...)`: the guest sees no files (no preopened directories) and no
// network. The body must never contain the host's /etc/passwd.
//
// {"passwd": "<read /etc/passwd>", "root": "<open />", "readdir": "<list />",
//  "tcp": "<connect 127.0.0.1:1>"}

use std::fmt::Debug;

fn show<T: Debug>(result: std::io::Result<T>) -> String {
    match result {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({e})"),
    }
}

fn main() {
    let body = serde_json::json!({
        "passwd": show(std::fs::read_to_string("/etc/passwd")),
        "root": show(std::fs::File::open("/")),
        "readdir": show(std::fs::read_dir("/").map(|d| d.count())),
        "tcp": show(std::net::TcpStream::connect("127.0.0.1:1")),
    });
    let response = serde_json::json!({
        "status": 200,
        "headers": { "content-type": "application/json" },
        "body": body.to_string(),
    });
    println!("{response}");
}
