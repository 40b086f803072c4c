;; garbage.wat: wasmgate_handle returns a valid, in-bounds range (16 bytes at
;; address 256) whose bytes are not a postcard-encoded Response: the status
;; varint 0xff 0xff 0xff... never ends within the 3 bytes a u16 may take.
;; Expected: decoding fails: 502 with error kind `bad-response`.
(module
  (memory (export "memory") 1)
  (data (i32.const 256)
    "\ff\ff\ff\ff\ff\ff\ff\ff\ff\ff\ff\ff\ff\ff\ff\ff")
  (func (export "wasmgate_abi_v1"))
  (func (export "wasmgate_alloc") (param $len i32) (result i32)
    (i32.const 1024))
  (func (export "wasmgate_handle") (param $ptr i32) (param $len i32) (result i64)
    ;; (ptr << 32) | len with ptr = 256, len = 16
    (i64.const 0x0000010000000010)))
