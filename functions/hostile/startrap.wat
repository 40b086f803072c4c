;; startrap.wat: the module's start function executes `unreachable`, so
;; instantiating it traps before any export can be called.
;; Expected: 502 with error kind `trap` (the module itself compiles fine;
;; it fails per request, at instantiation).
(module
  (memory (export "memory") 1)
  (func $boom
    (unreachable))
  (start $boom)
  (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param $len i32) (result i32)
    (i32.const 1024))
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (i64.const 0)))
