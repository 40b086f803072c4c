#!/usr/bin/env python3
"""wasi-json hostile modules: _start prints a given stdout."""
import os, subprocess, sys
out = sys.argv[1]
def wasi(name, stdout, extra=''):
    esc = ''.join(chr(c) if 32 <= c < 127 and c not in (34, 92) else '\\%02x' % c for c in stdout)
    n = len(stdout)
    pages = n // 65536 + 2
    lenhex = ''.join('\\%02x' % b for b in n.to_bytes(4, 'little'))
    p = os.path.join(out, name + '.wat')
    open(p, 'w').write(f'''(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") {pages})
  (data (i32.const 0) "\\10\\00\\00\\00{lenhex}")
  (data (i32.const 16) "{esc}")
  (func (export "_start") (local i32)
    (loop $l
      (local.set 0 (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      ;; advance iovec by nwritten
      (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.load (i32.const 8))))
      (i32.store (i32.const 4) (i32.sub (i32.load (i32.const 4)) (i32.load (i32.const 8))))
      (br_if $l (i32.and (i32.eqz (local.get 0)) (i32.ne (i32.load (i32.const 4)) (i32.const 0)))))) {extra})''')
    subprocess.run(['wat2wasm', p, '-o', os.path.join(out, name + '.wasm')], check=True)
    os.remove(p)
MiB = 1 << 20
n = (MiB - 100) // 3
wasi('jsonheaders', b'{"status":200,"headers":{"a":[' + b','.join([b'""'] * n) + b']},"body":"x"}')
n = (MiB - 100) // 6
wasi('jsonmanykeys', b'{"status":200,"headers":{' + b','.join(b'"%x":1' % i for i in range(60000)) + b'},"body":"x"}')
wasi('jsondeep', b'[' * (MiB - 10) + b']' * 5)
wasi('jsonescapes', b'{"body":"' + b'\\ud83d\\ude00' * ((MiB - 20) // 12) + b'"}')
wasi('jsonnums', b'{"body":"x","status":200,"x":[' + b','.join([b'1e999999'] * ((MiB - 50) // 9)) + b']}')
print('ok')
