;; badimport.wat: imports `env.nonexistent`, a function no wasmgate host
;; provides (only `wasi_snapshot_preview1` and `wasmgate` imports are allowed).
;; Expected: the module cannot be loaded: 503 with error kind
;; `module-unavailable`; the server log (and `wasmgate check`) names
;; `env.nonexistent`. Clients get a generic message: paths stay private.
(module
  (import "env" "nonexistent" (func $nonexistent))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param $len i32) (result i32)
    (i32.const 1024))
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (call $nonexistent)
    (i64.const 0)))
