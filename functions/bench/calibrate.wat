;; calibrate.wat: the fixed workload of `wasmgate calibrate`, which measures
;; how many instructions (fuel units) this machine's wasmi runs per
;; millisecond. A mix of what handlers do: integer arithmetic, memory loads
;; and stores, calls and branches. Built into the wasmgate binary.
(module
  (memory 1)
  (func $mix (param $x i32) (param $y i32) (result i32)
    (i32.xor
      (i32.mul (local.get $x) (i32.const 1103515245))
      (i32.add (local.get $y) (i32.const 12345))))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32) (local $addr i32) (local $wide i64)
    (loop $next
      (local.set $addr (i32.and (i32.shl (local.get $i) (i32.const 2)) (i32.const 0xfffc)))
      (i32.store (local.get $addr)
        (i32.add (i32.load (local.get $addr)) (local.get $acc)))
      (local.set $acc (call $mix (local.get $acc) (local.get $i)))
      (local.set $wide
        (i64.add (local.get $wide) (i64.extend_i32_u (local.get $acc))))
      (if (i32.and (local.get $acc) (i32.const 1))
        (then (local.set $acc (i32.shr_u (local.get $acc) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    (i32.xor (local.get $acc) (i32.wrap_i64 (local.get $wide)))))
