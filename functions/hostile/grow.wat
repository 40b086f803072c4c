;; grow.wat: wasmgate_handle grows memory by one page at a time, forever, and
;; keeps going when memory.grow returns -1 (denied).
;; Expected: the host traps on the first denied growth past its memory limit:
;; 502 with error kind `memory-limit` (not a 504 after burning all the fuel).
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param $len i32) (result i32)
    (i32.const 1024))
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    (loop $more
      (drop (memory.grow (i32.const 1)))
      (br $more))
    (i64.const 0)))
