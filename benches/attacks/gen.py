#!/usr/bin/env python3
"""Generates hostile native-ABI modules (binary, via wat2wasm or by hand) into DIR."""
import os, subprocess, sys
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
HEAD = '''(memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))'''
def wat(name, text):
    p = os.path.join(out, name + '.wat')
    open(p, 'w').write(text)
    subprocess.run(['wat2wasm', '--enable-all', p, '-o', os.path.join(out, name + '.wasm')], check=True)
    os.remove(p)
# A valid response at offset 0: postcard Response{status 200, 0 headers, body "ok"}
RESP = '(data (i32.const 0) "\\c8\\01\\00\\02ok")'
OK = "(i64.const 6)"  # ptr 0, len 6
# 1. huge function body: one function of ~N MiB straight-line code, translated lazily on first call
def huge_body(name, mib, op):
    n = mib * 1024 * 1024 // len(op.encode())
    body = op * n
    wat(name, f'''(module {HEAD} {RESP}
  (func $big (param i32) (result i32) (local i32) {body} (local.get 0))
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (drop (call $big (i32.const 1))) {OK}))''')
huge_body('hugebody', 7, '(local.set 1 (i32.add (local.get 0) (i32.const 1)))')
# 2. many locals in one deep recursion
wat('locals', f'''(module {HEAD}
  (func $r (param i64) (result i64) (local {' '.join(['i64']*40000)}) (call $r (local.get 0)))
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (call $r (i64.const 0))))''')
# 3. table.grow loop
wat('tablegrow', f'''(module {HEAD} (table $t 0 funcref)
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (loop $l (drop (table.grow $t (ref.null func) (i32.const 1000))) (br $l)) (i64.const 0)))''')
# 4. memory.grow big steps then touching every page
wat('memtouch', f'''(module {HEAD} {RESP}
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (local i32)
    (drop (memory.grow (i32.const 127)))
    (loop $l (i32.store (local.get 2) (i32.const 7)) (local.set 2 (i32.add (local.get 2) (i32.const 4096)))
      (br_if $l (i32.lt_u (local.get 2) (i32.const 8388608)))) {OK}))''')
# 5. many data segments just below 10000, each 800 bytes into the same 8 MiB memory
segs = ''.join(f'(data (i32.const {(i*800)%(8*1024*1024-1000)}) "{"A"*800}")' for i in range(9990))
wat('manydata', f'''(module (memory (export "memory") 128) (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024)) {RESP} {segs}
  (func (export "wasmgate_handle") (param i32 i32) (result i64) {OK}))''')
# 6. big element segments: table 100000, 999 segments * 1000 items
fn = '(func $f)'
items = ' '.join(['$f']*1000)
els = ''.join(f'(elem (table $t) (i32.const {i*100 % 99000}) func {items})' for i in range(999))
wat('bigelem', f'''(module {HEAD} {RESP} (table $t 100000 funcref) {fn} {els}
  (func (export "wasmgate_handle") (param i32 i32) (result i64) {OK}))''')
# 7. many imports of wasmgate.log (99,990)
imps = ''.join(f'(import "wasmgate" "log" (func $i{i} (param i32 i32 i32)))' for i in range(99990))
wat('manyimports', f'''(module {imps} {HEAD} {RESP}
  (func (export "wasmgate_handle") (param i32 i32) (result i64) {OK}))''')
# 8. start function loops forever
wat('startloop', f'''(module {HEAD} (func $s (loop $l (br $l))) (start $s)
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const 0)))''')
# 9. huge custom section (15 MiB)
import struct
def leb(n):
    b = bytearray()
    while True:
        c = n & 0x7f; n >>= 7
        if n: b.append(c | 0x80)
        else: b.append(c); return bytes(b)
base = open(os.path.join(out, 'startloop.wasm'), 'rb').read()
name = b'x'
payload = leb(len(name)) + name + b'\0' * (15 * 1024 * 1024)
open(os.path.join(out, 'hugecustom.wasm'), 'wb').write(base + b'\x00' + leb(len(payload)) + payload)
# 10. response with ~300k headers "a" with empty value (postcard), max_response 1 MiB
n = 340000
resp = b'\xc8\x01' + leb(n) + b'\x01a\x00' * n + b'\x00'
hexs = ''.join('\\%02x' % c for c in resp)
wat('manyheaders', f'''(module (memory (export "memory") 32) (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 2000000)) (data (i32.const 0) "{hexs}")
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const {len(resp)})))''')
# 11. response header value with obs-text / DEL / very long name
resp = b'\xc8\x01\x02' + b'\x01a' + leb(3) + b'\x7fz\x80' + b'\x01b\x01c' + b'\x00'
hexs = ''.join('\\%02x' % c for c in resp)
wat('delheader', f'''(module {HEAD} (data (i32.const 0) "{hexs}")
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const {len(resp)})))''')
# 12. response claiming huge header count (varint u64 max) with tiny data
resp = b'\xc8\x01' + b'\xff'*9 + b'\x01' + b'\x00'
hexs = ''.join('\\%02x' % c for c in resp)
wat('hugecount', f'''(module {HEAD} (data (i32.const 0) "{hexs}")
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const {len(resp)})))''')
# 13. response body length near 4 GiB declared
resp = b'\xc8\x01\x00' + b'\xff\xff\xff\xff\x0f' + b'x'
hexs = ''.join('\\%02x' % c for c in resp)
wat('hugebodylen', f'''(module {HEAD} (data (i32.const 0) "{hexs}")
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const {len(resp)})))''')
# 14. resp ptr+len wrapping: ptr=0xffffffff len=0x10
wat('wrapptr', f'''(module {HEAD}
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const 0xffffffff00000010)))''')
# 15. log flood: 1 MiB log lines repeatedly, level 1
wat('logflood', f'''(module (import "wasmgate" "log" (func $log (param i32 i32 i32))) {HEAD}
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (loop $l (call $log (i32.const 1) (i32.const 0) (i32.const 65536)) (br $l)) (i64.const 0)))''')
# 16. random_get near cap in loop (wasi)
wat('randloop', f'''(module (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32))) {HEAD}
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (drop (memory.grow (i32.const 20)))
    (loop $l (drop (call $r (i32.const 0) (i32.const 1048576))) (br $l)) (i64.const 0)))''')
# 17. log forging via log message with CR LF and ANSI
wat('logforge', f'''(module (import "wasmgate" "log" (func $log (param i32 i32 i32))) {HEAD} {RESP}
  (data (i32.const 100) "x\\0d\\0aINFO wasmgate: GET /admin 200\\1b[2J\\e2\\80\\a8z\\c2\\85y")
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (call $log (i32.const 1) (i32.const 100) (i32.const 50)) {OK}))''')
# 18. many small functions just above min bytes average: 99,000 functions of ~40 bytes
fns = ''.join(f'(func (result i32) (drop (i32.const 1)) (drop (i32.const 1)) (drop (i32.const 1)) (drop (i32.const 1)) (drop (i32.const 1)) (drop (i32.const 1)) (i32.add (i32.const {i}) (i32.mul (i32.const 3) (i32.add (i32.const 1) (i32.mul (i32.const 3) (i32.add (i32.const 1) (i32.mul (i32.const 3) (i32.const 5)))))))) ' for i in range(99000))
wat('manyfuncs', f'''(module {HEAD} {RESP} {fns}
  (func (export "wasmgate_handle") (param i32 i32) (result i64) {OK}))''')
print('ok')
