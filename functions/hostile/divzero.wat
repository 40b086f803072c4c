;; divzero.wat: wasmgate_handle divides by zero with i32.div_s. The divisor is
;; computed from the request length (len - len) rather than written as a
;; constant: the module is valid and compiles; only running it fails.
;; Expected: 502 with error kind `trap` (integer division by zero).
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param $len i32) (result i32)
    (i32.const 1024))
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (i64.extend_i32_s
      (i32.div_s
        (i32.const 1)
        (i32.sub (local.get $len) (local.get $len))))))
