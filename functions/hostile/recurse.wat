;; recurse.wat: wasmgate_handle calls a function that calls itself without
;; bound (not in tail position, so every call needs a new frame).
;; Expected: the interpreter's call stack limit stops it: 502 with error kind
;; `trap` (stack overflow); the host itself must not overflow its stack.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param $len i32) (result i32)
    (i32.const 1024))
  (func $down (param $depth i64) (result i64)
    (i64.add
      (call $down (i64.add (local.get $depth) (i64.const 1)))
      (i64.const 1)))
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (call $down (i64.const 0))))
