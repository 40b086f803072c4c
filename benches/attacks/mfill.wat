(module (memory (export "memory") 120) (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (loop $l (memory.copy (i32.const 0) (i32.const 3932160) (i32.const 3932160)) (br $l)) (i64.const 0)))
