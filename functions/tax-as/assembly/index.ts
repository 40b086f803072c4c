// tax-as: the `tax` example (functions/tax) in AssemblyScript, a WASI
// command through @assemblyscript/wasi-shim, JSON with assemblyscript-json.
// Body {"id": string or number, "value": number} -> 200
// {"order_id": id, "total_final": value * 1.15} rounded to 2 decimals; a
// JSON body of another shape -> 400. A body that is not JSON at all traps
// (assemblyscript-json aborts; AssemblyScript has no exceptions): 502.
// Build: npm ci && npm run build (not part of functions/build.sh).
import { JSON } from "assemblyscript-json/assembly";

function readAll(): string {
  let chunks = new Array<ArrayBuffer>();
  let total = 0;
  while (true) {
    const buf = new ArrayBuffer(4096);
    const n = process.stdin.read(buf);
    if (n <= 0) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    all.set(Uint8Array.wrap(chunks[i]), at);
    at += chunks[i].byteLength;
  }
  return String.UTF8.decode(all.buffer);
}

function reply(status: i32, body: JSON.Obj): void {
  const resp = new JSON.Obj();
  resp.set("status", status);
  const headers = new JSON.Obj();
  const ct = new JSON.Arr();
  ct.push(JSON.from("application/json"));
  headers.set("Content-Type", ct);
  resp.set("headers", headers);
  resp.set("body", body.stringify());
  process.stdout.write(resp.stringify() + "\n");
}

const req = <JSON.Obj>JSON.parse(readAll());
const bodyStr = req.getString("body");
let bodyText = "null";
if (bodyStr != null) bodyText = bodyStr!.valueOf();
const order = JSON.parse(bodyText);
let ok = false;
if (order.isObj) {
  const o = <JSON.Obj>order;
  const id = o.getValue("id");
  const value = o.getValue("value");
  if (id != null && (id!.isString || id!.isNum || id!.isInteger) && value != null && (value!.isNum || value!.isInteger)) {
    const v: f64 = value!.isInteger ? <f64>(<JSON.Integer>value!).valueOf() : (<JSON.Num>value!).valueOf();
    const total = Math.round(v * (1.0 + 0.15) * 100.0) / 100.0;
    const out = new JSON.Obj();
    out.set("order_id", id!);
    out.set("total_final", total);
    reply(200, out);
    ok = true;
  }
}
if (!ok) {
  const err = new JSON.Obj();
  err.set("error", "body must be {\"id\": string or number, \"value\": number}");
  reply(400, err);
}
