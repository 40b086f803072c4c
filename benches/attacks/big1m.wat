(module (memory (export "memory") 17) (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1048576))
  (data (i32.const 0) "\c8\01\00\c0\84\3d")
  (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const 1000006)))
