;; loop.wat: wasmgate_handle spins forever in an empty loop.
;; Expected: the request runs out of fuel (or hits the wall-clock backstop)
;; and gets 504 with error kind `deadline`; other requests keep being served.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param $len i32) (result i32)
    (i32.const 1024))
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (loop $forever
      (br $forever))
    (i64.const 0)))
