;; bigresponse.wat: wasmgate_handle claims a response of 0x7fffffff bytes
;; (2 GiB) at address 0, far past both its one page of memory and any
;; response size cap.
;; Expected: the host checks the length against its cap and the memory size
;; before reading or allocating anything: 502 with error kind `bad-response`.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param $len i32) (result i32)
    (i32.const 1024))
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    ;; (ptr << 32) | len with ptr = 0, len = 0x7fffffff
    (i64.const 0x7fffffff)))
