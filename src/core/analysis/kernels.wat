;; Statistics kernels (WebAssembly 128-bit SIMD) over float32 data that sits in a shared memory: the model file
;; itself is read into this memory (see wasm-kernels.ts), so both threads compute on the tensors in place.
;; Compiled by scripts/build-wasm.ts into kernels-wasm.ts (base64); a unit test checks the two agree.
;;
;; Same arithmetic as the JavaScript reference (stats.ts weightStats): sums and squares in float64 (a float32
;; promoted to float64 and squared is exact), histogram bin = trunc((v - lo) * scale) in float64. Only the order of
;; the float64 additions differs (four lanes). Addresses may be unaligned (raw_data rarely is 4-byte aligned).
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; pass 1 over n floats at $p: sum (f64 at $out), min (f32 at $out+8), max (f32 at $out+12), exact zeros
  ;; (i32 at $out+16). NaN makes min/max NaN and infinities make the sum non-finite: the caller then takes the
  ;; careful path that leaves non-finite values out.
  (func (export "pass1") (param $p i32) (param $n i32) (param $out i32)
    (local $end i32) (local $end8 i32) (local $v v128) (local $w v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $mn v128) (local $mx v128) (local $mn2 v128) (local $mx2 v128) (local $z v128) (local $z2 v128)
    (local $x f32) (local $sum f64) (local $fmin f32) (local $fmax f32) (local $zeros i32)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end8 (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (local.set $mn (v128.const f32x4 inf inf inf inf))
    (local.set $mn2 (local.get $mn))
    (local.set $mx (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $mx2 (local.get $mx))
    ;; eight floats per turn, two independent sets of accumulators
    (block $done8
      (loop $l8
        (br_if $done8 (i32.ge_u (local.get $p) (local.get $end8)))
        (local.set $v (v128.load align=1 (local.get $p)))
        (local.set $w (v128.load offset=16 align=1 (local.get $p)))
        (local.set $mn (f32x4.pmin (local.get $mn) (local.get $v)))
        (local.set $mx (f32x4.pmax (local.get $mx) (local.get $v)))
        (local.set $mn2 (f32x4.pmin (local.get $mn2) (local.get $w)))
        (local.set $mx2 (f32x4.pmax (local.get $mx2) (local.get $w)))
        (local.set $z (i32x4.sub (local.get $z) (f32x4.eq (local.get $v) (v128.const f32x4 0 0 0 0))))
        (local.set $z2 (i32x4.sub (local.get $z2) (f32x4.eq (local.get $w) (v128.const f32x4 0 0 0 0))))
        (local.set $s0 (f64x2.add (local.get $s0) (f64x2.promote_low_f32x4 (local.get $v))))
        (local.set $s1 (f64x2.add (local.get $s1)
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
        (local.set $s2 (f64x2.add (local.get $s2) (f64x2.promote_low_f32x4 (local.get $w))))
        (local.set $s3 (f64x2.add (local.get $s3)
          (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w)))))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (br $l8)))
    (local.set $mn (f32x4.pmin (local.get $mn) (local.get $mn2)))
    (local.set $mx (f32x4.pmax (local.get $mx) (local.get $mx2)))
    (local.set $z (i32x4.add (local.get $z) (local.get $z2)))
    (local.set $s0 (f64x2.add (f64x2.add (local.get $s0) (local.get $s1)) (f64x2.add (local.get $s2) (local.get $s3))))
    (local.set $sum (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0))))
    (local.set $fmin (f32.min (f32.min (f32x4.extract_lane 0 (local.get $mn)) (f32x4.extract_lane 1 (local.get $mn)))
                              (f32.min (f32x4.extract_lane 2 (local.get $mn)) (f32x4.extract_lane 3 (local.get $mn)))))
    (local.set $fmax (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx)))
                              (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx)))))
    (local.set $zeros (i32.add (i32.add (i32x4.extract_lane 0 (local.get $z)) (i32x4.extract_lane 1 (local.get $z)))
                               (i32.add (i32x4.extract_lane 2 (local.get $z)) (i32x4.extract_lane 3 (local.get $z)))))
    ;; the last n % 8 floats one at a time
    (block $done
      (loop $l1
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $x (f32.load align=1 (local.get $p)))
        (local.set $fmin (f32.min (local.get $fmin) (local.get $x)))
        (local.set $fmax (f32.max (local.get $fmax) (local.get $x)))
        (local.set $zeros (i32.add (local.get $zeros) (f32.eq (local.get $x) (f32.const 0))))
        (local.set $sum (f64.add (local.get $sum) (f64.promote_f32 (local.get $x))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $l1)))
    (f64.store (local.get $out) (local.get $sum))
    (f32.store offset=8 (local.get $out) (local.get $fmin))
    (f32.store offset=12 (local.get $out) (local.get $fmax))
    (i32.store offset=16 (local.get $out) (local.get $zeros)))

  ;; sum of squares (f64) of n floats at $p, the count of |v| <= $near (added to the i32 at $cnt) and the
  ;; histogram bins trunc((v - $lo) * $scale) counted into four per-lane tables of 36 i32 at $hist (lane k's
  ;; table at $hist + 144 k; the caller adds them up). Bins are >= 0 because every v >= lo; finite data only.
  (func $segment (param $p i32) (param $n i32) (param $lo f64) (param $scale f64) (param $near f32) (param $hist i32) (param $cnt i32) (result f64)
    (local $end i32) (local $end4 i32) (local $v v128) (local $a v128) (local $b v128) (local $bins v128)
    (local $q0 v128) (local $q1 v128) (local $nz v128) (local $lo2 v128) (local $sc2 v128) (local $near4 v128)
    (local $x f32) (local $d f64) (local $sq f64) (local $cnear i32) (local $h i32)
    (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $p) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $lo2 (f64x2.splat (local.get $lo)))
    (local.set $sc2 (f64x2.splat (local.get $scale)))
    (local.set $near4 (f32x4.splat (local.get $near)))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.ge_u (local.get $p) (local.get $end4)))
        (local.set $v (v128.load align=1 (local.get $p)))
        (local.set $a (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $b (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        (local.set $q0 (f64x2.add (local.get $q0) (f64x2.mul (local.get $a) (local.get $a))))
        (local.set $q1 (f64x2.add (local.get $q1) (f64x2.mul (local.get $b) (local.get $b))))
        (local.set $nz (i32x4.sub (local.get $nz) (f32x4.le (f32x4.abs (local.get $v)) (local.get $near4))))
        ;; bin = floor(t) for t = (v - lo) * scale in [0, 34): floor(t) + 2^52 holds the integer in the low 32 bits
        ;; of its float64 (cheaper than a saturating conversion); lanes 0, 1 come from $a and lanes 2, 3 from $b
        (local.set $bins (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27
          (f64x2.add (f64x2.floor (f64x2.mul (f64x2.sub (local.get $a) (local.get $lo2)) (local.get $sc2))) (v128.const f64x2 0x1p52 0x1p52))
          (f64x2.add (f64x2.floor (f64x2.mul (f64x2.sub (local.get $b) (local.get $lo2)) (local.get $sc2))) (v128.const f64x2 0x1p52 0x1p52))))
        (local.set $h (i32.add (local.get $hist) (i32.shl (i32x4.extract_lane 0 (local.get $bins)) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist) (i32.shl (i32x4.extract_lane 1 (local.get $bins)) (i32.const 2))))
        (i32.store offset=144 (local.get $h) (i32.add (i32.load offset=144 (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist) (i32.shl (i32x4.extract_lane 2 (local.get $bins)) (i32.const 2))))
        (i32.store offset=288 (local.get $h) (i32.add (i32.load offset=288 (local.get $h)) (i32.const 1)))
        (local.set $h (i32.add (local.get $hist) (i32.shl (i32x4.extract_lane 3 (local.get $bins)) (i32.const 2))))
        (i32.store offset=432 (local.get $h) (i32.add (i32.load offset=432 (local.get $h)) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $l4)))
    (local.set $q0 (f64x2.add (local.get $q0) (local.get $q1)))
    (local.set $sq (f64.add (f64x2.extract_lane 0 (local.get $q0)) (f64x2.extract_lane 1 (local.get $q0))))
    (local.set $cnear (i32.add (i32.add (i32x4.extract_lane 0 (local.get $nz)) (i32x4.extract_lane 1 (local.get $nz)))
                               (i32.add (i32x4.extract_lane 2 (local.get $nz)) (i32x4.extract_lane 3 (local.get $nz)))))
    (block $done
      (loop $l1
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $x (f32.load align=1 (local.get $p)))
        (local.set $d (f64.promote_f32 (local.get $x)))
        (local.set $sq (f64.add (local.get $sq) (f64.mul (local.get $d) (local.get $d))))
        (local.set $cnear (i32.add (local.get $cnear) (f32.le (f32.abs (local.get $x)) (local.get $near))))
        (local.set $h (i32.add (local.get $hist)
          (i32.shl (i32.trunc_sat_f64_s (f64.mul (f64.sub (local.get $d) (local.get $lo)) (local.get $scale))) (i32.const 2))))
        (i32.store (local.get $h) (i32.add (i32.load (local.get $h)) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $l1)))
    (i32.store (local.get $cnt) (i32.add (i32.load (local.get $cnt)) (local.get $cnear)))
    (local.get $sq))

  ;; pass 2 over a row-major tensor of outer x size x inner floats at $p whose channels are on the middle axis:
  ;; the sum of squares of each (outer, channel) run is added to the f64 at $acc + 8 (base + c), where base =
  ;; floor(o / $rpg) * size for grouped ConvTranspose kernels ($rpg = rows per group) and 0 otherwise; returns the
  ;; total sum of squares. Near-zero count and histogram as in $segment.
  (func (export "pass2") (param $p i32) (param $outer i32) (param $size i32) (param $inner i32) (param $rpg i32)
    (param $lo f64) (param $scale f64) (param $near f32) (param $acc i32) (param $hist i32) (param $cnt i32) (result f64)
    (local $o i32) (local $c i32) (local $base i32) (local $slot i32) (local $s f64) (local $total f64)
    (block $outer_done
      (loop $lo_o
        (br_if $outer_done (i32.ge_u (local.get $o) (local.get $outer)))
        (local.set $base (if (result i32) (local.get $rpg)
          (then (i32.mul (i32.div_u (local.get $o) (local.get $rpg)) (local.get $size)))
          (else (i32.const 0))))
        (local.set $c (i32.const 0))
        (block $chan_done
          (loop $lo_c
            (br_if $chan_done (i32.ge_u (local.get $c) (local.get $size)))
            (local.set $s (call $segment (local.get $p) (local.get $inner) (local.get $lo) (local.get $scale) (local.get $near) (local.get $hist) (local.get $cnt)))
            (local.set $slot (i32.add (local.get $acc) (i32.shl (i32.add (local.get $base) (local.get $c)) (i32.const 3))))
            (f64.store (local.get $slot) (f64.add (f64.load (local.get $slot)) (local.get $s)))
            (local.set $total (f64.add (local.get $total) (local.get $s)))
            (local.set $p (i32.add (local.get $p) (i32.shl (local.get $inner) (i32.const 2))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $lo_c)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $lo_o)))
    (local.get $total))

  ;; Activation statistics of one block (streaming-stats.ts ChannelStats.add): a row-major [outer, C, inner] tensor
  ;; of float32 at $p; per channel c, with shift[c] (f64) subtracted in float64: sum (f64), sum of squares (f64),
  ;; min and max (f32; NaN never wins) and the count of values <= 0 (i32; NaN is not counted) are ADDED to /
  ;; merged into the per-channel arrays at $sum, $sq, $mn, $mx, $np (the caller initialises them).
  (func (export "chan_runs") (param $p i32) (param $outer i32) (param $C i32) (param $inner i32)
    (param $shift i32) (param $sum i32) (param $sq i32) (param $mn i32) (param $mx i32) (param $np i32)
    (local $o i32) (local $c i32) (local $end i32) (local $end4 i32) (local $k f64) (local $k2 v128)
    (local $v v128) (local $a v128) (local $b v128) (local $s0 v128) (local $s1 v128) (local $q0 v128) (local $q1 v128)
    (local $lo v128) (local $hi v128) (local $z v128) (local $x f32) (local $d f64) (local $fs f64) (local $fq f64)
    (local $flo f32) (local $fhi f32) (local $fz i32) (local $slot i32)
    (block $outer_done
      (loop $lo_o
        (br_if $outer_done (i32.ge_u (local.get $o) (local.get $outer)))
        (local.set $c (i32.const 0))
        (block $chan_done
          (loop $lo_c
            (br_if $chan_done (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $k (f64.load (i32.add (local.get $shift) (i32.shl (local.get $c) (i32.const 3)))))
            (local.set $k2 (f64x2.splat (local.get $k)))
            (local.set $end (i32.add (local.get $p) (i32.shl (local.get $inner) (i32.const 2))))
            (local.set $end4 (i32.add (local.get $p) (i32.shl (i32.and (local.get $inner) (i32.const -4)) (i32.const 2))))
            (local.set $s0 (v128.const i64x2 0 0))
            (local.set $s1 (v128.const i64x2 0 0))
            (local.set $q0 (v128.const i64x2 0 0))
            (local.set $q1 (v128.const i64x2 0 0))
            (local.set $z (v128.const i64x2 0 0))
            (local.set $lo (v128.const f32x4 inf inf inf inf))
            (local.set $hi (v128.const f32x4 -inf -inf -inf -inf))
            (block $d4
              (loop $l4
                (br_if $d4 (i32.ge_u (local.get $p) (local.get $end4)))
                (local.set $v (v128.load align=1 (local.get $p)))
                (local.set $a (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (local.get $k2)))
                (local.set $b (f64x2.sub (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))) (local.get $k2)))
                (local.set $s0 (f64x2.add (local.get $s0) (local.get $a)))
                (local.set $s1 (f64x2.add (local.get $s1) (local.get $b)))
                (local.set $q0 (f64x2.add (local.get $q0) (f64x2.mul (local.get $a) (local.get $a))))
                (local.set $q1 (f64x2.add (local.get $q1) (f64x2.mul (local.get $b) (local.get $b))))
                (local.set $lo (f32x4.pmin (local.get $lo) (local.get $v)))
                (local.set $hi (f32x4.pmax (local.get $hi) (local.get $v)))
                (local.set $z (i32x4.sub (local.get $z) (f32x4.le (local.get $v) (v128.const f32x4 0 0 0 0))))
                (local.set $p (i32.add (local.get $p) (i32.const 16)))
                (br $l4)))
            (local.set $s0 (f64x2.add (local.get $s0) (local.get $s1)))
            (local.set $q0 (f64x2.add (local.get $q0) (local.get $q1)))
            (local.set $fs (f64.add (f64x2.extract_lane 0 (local.get $s0)) (f64x2.extract_lane 1 (local.get $s0))))
            (local.set $fq (f64.add (f64x2.extract_lane 0 (local.get $q0)) (f64x2.extract_lane 1 (local.get $q0))))
            (local.set $flo (f32.load (i32.add (local.get $mn) (i32.shl (local.get $c) (i32.const 2)))))
            (local.set $fhi (f32.load (i32.add (local.get $mx) (i32.shl (local.get $c) (i32.const 2)))))
            (local.set $fz (i32.add (i32.add (i32x4.extract_lane 0 (local.get $z)) (i32x4.extract_lane 1 (local.get $z)))
                                    (i32.add (i32x4.extract_lane 2 (local.get $z)) (i32x4.extract_lane 3 (local.get $z)))))
            ;; lanes into the running min / max: x < flo keeps NaN out, like the SIMD pmin
            (local.set $x (f32x4.extract_lane 0 (local.get $lo)))
            (if (f32.lt (local.get $x) (local.get $flo)) (then (local.set $flo (local.get $x))))
            (local.set $x (f32x4.extract_lane 1 (local.get $lo)))
            (if (f32.lt (local.get $x) (local.get $flo)) (then (local.set $flo (local.get $x))))
            (local.set $x (f32x4.extract_lane 2 (local.get $lo)))
            (if (f32.lt (local.get $x) (local.get $flo)) (then (local.set $flo (local.get $x))))
            (local.set $x (f32x4.extract_lane 3 (local.get $lo)))
            (if (f32.lt (local.get $x) (local.get $flo)) (then (local.set $flo (local.get $x))))
            (local.set $x (f32x4.extract_lane 0 (local.get $hi)))
            (if (f32.gt (local.get $x) (local.get $fhi)) (then (local.set $fhi (local.get $x))))
            (local.set $x (f32x4.extract_lane 1 (local.get $hi)))
            (if (f32.gt (local.get $x) (local.get $fhi)) (then (local.set $fhi (local.get $x))))
            (local.set $x (f32x4.extract_lane 2 (local.get $hi)))
            (if (f32.gt (local.get $x) (local.get $fhi)) (then (local.set $fhi (local.get $x))))
            (local.set $x (f32x4.extract_lane 3 (local.get $hi)))
            (if (f32.gt (local.get $x) (local.get $fhi)) (then (local.set $fhi (local.get $x))))
            (block $d1
              (loop $l1
                (br_if $d1 (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $x (f32.load align=1 (local.get $p)))
                (local.set $d (f64.sub (f64.promote_f32 (local.get $x)) (local.get $k)))
                (local.set $fs (f64.add (local.get $fs) (local.get $d)))
                (local.set $fq (f64.add (local.get $fq) (f64.mul (local.get $d) (local.get $d))))
                (if (f32.lt (local.get $x) (local.get $flo)) (then (local.set $flo (local.get $x))))
                (if (f32.gt (local.get $x) (local.get $fhi)) (then (local.set $fhi (local.get $x))))
                (local.set $fz (i32.add (local.get $fz) (f32.le (local.get $x) (f32.const 0))))
                (local.set $p (i32.add (local.get $p) (i32.const 4)))
                (br $l1)))
            (local.set $slot (i32.add (local.get $sum) (i32.shl (local.get $c) (i32.const 3))))
            (f64.store (local.get $slot) (f64.add (f64.load (local.get $slot)) (local.get $fs)))
            (local.set $slot (i32.add (local.get $sq) (i32.shl (local.get $c) (i32.const 3))))
            (f64.store (local.get $slot) (f64.add (f64.load (local.get $slot)) (local.get $fq)))
            (f32.store (i32.add (local.get $mn) (i32.shl (local.get $c) (i32.const 2))) (local.get $flo))
            (f32.store (i32.add (local.get $mx) (i32.shl (local.get $c) (i32.const 2))) (local.get $fhi))
            (local.set $slot (i32.add (local.get $np) (i32.shl (local.get $c) (i32.const 2))))
            (i32.store (local.get $slot) (i32.add (i32.load (local.get $slot)) (local.get $fz)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $lo_c)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $lo_o))))

  ;; The same for channels-last data ([rows, C], inner = 1): four channels at a time across each row, with the
  ;; per-channel arrays read and written as vectors (C % 4 channels one at a time).
  (func (export "chan_last") (param $p i32) (param $rows i32) (param $C i32)
    (param $shift i32) (param $sum i32) (param $sq i32) (param $mn i32) (param $mx i32) (param $np i32)
    (local $r i32) (local $c i32) (local $C4 i32) (local $v v128) (local $a v128) (local $b v128)
    (local $o8 i32) (local $o4 i32) (local $x f32) (local $d f64)
    (local.set $C4 (i32.and (local.get $C) (i32.const -4)))
    (block $rows_done
      (loop $lo_r
        (br_if $rows_done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $c (i32.const 0))
        (block $d4
          (loop $l4
            (br_if $d4 (i32.ge_u (local.get $c) (local.get $C4)))
            (local.set $o8 (i32.shl (local.get $c) (i32.const 3)))
            (local.set $o4 (i32.shl (local.get $c) (i32.const 2)))
            (local.set $v (v128.load align=1 (local.get $p)))
            (local.set $a (f64x2.sub (f64x2.promote_low_f32x4 (local.get $v)) (v128.load align=1 (i32.add (local.get $shift) (local.get $o8)))))
            (local.set $b (f64x2.sub (f64x2.promote_low_f32x4
              (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))
              (v128.load offset=16 align=1 (i32.add (local.get $shift) (local.get $o8)))))
            (v128.store align=1 (i32.add (local.get $sum) (local.get $o8))
              (f64x2.add (v128.load align=1 (i32.add (local.get $sum) (local.get $o8))) (local.get $a)))
            (v128.store offset=16 align=1 (i32.add (local.get $sum) (local.get $o8))
              (f64x2.add (v128.load offset=16 align=1 (i32.add (local.get $sum) (local.get $o8))) (local.get $b)))
            (v128.store align=1 (i32.add (local.get $sq) (local.get $o8))
              (f64x2.add (v128.load align=1 (i32.add (local.get $sq) (local.get $o8))) (f64x2.mul (local.get $a) (local.get $a))))
            (v128.store offset=16 align=1 (i32.add (local.get $sq) (local.get $o8))
              (f64x2.add (v128.load offset=16 align=1 (i32.add (local.get $sq) (local.get $o8))) (f64x2.mul (local.get $b) (local.get $b))))
            (v128.store align=1 (i32.add (local.get $mn) (local.get $o4))
              (f32x4.pmin (v128.load align=1 (i32.add (local.get $mn) (local.get $o4))) (local.get $v)))
            (v128.store align=1 (i32.add (local.get $mx) (local.get $o4))
              (f32x4.pmax (v128.load align=1 (i32.add (local.get $mx) (local.get $o4))) (local.get $v)))
            (v128.store align=1 (i32.add (local.get $np) (local.get $o4))
              (i32x4.sub (v128.load align=1 (i32.add (local.get $np) (local.get $o4))) (f32x4.le (local.get $v) (v128.const f32x4 0 0 0 0))))
            (local.set $p (i32.add (local.get $p) (i32.const 16)))
            (local.set $c (i32.add (local.get $c) (i32.const 4)))
            (br $l4)))
        (block $d1
          (loop $l1
            (br_if $d1 (i32.ge_u (local.get $c) (local.get $C)))
            (local.set $o8 (i32.shl (local.get $c) (i32.const 3)))
            (local.set $o4 (i32.shl (local.get $c) (i32.const 2)))
            (local.set $x (f32.load align=1 (local.get $p)))
            (local.set $d (f64.sub (f64.promote_f32 (local.get $x)) (f64.load (i32.add (local.get $shift) (local.get $o8)))))
            (f64.store (i32.add (local.get $sum) (local.get $o8)) (f64.add (f64.load (i32.add (local.get $sum) (local.get $o8))) (local.get $d)))
            (f64.store (i32.add (local.get $sq) (local.get $o8))
              (f64.add (f64.load (i32.add (local.get $sq) (local.get $o8))) (f64.mul (local.get $d) (local.get $d))))
            (if (f32.lt (local.get $x) (f32.load (i32.add (local.get $mn) (local.get $o4))))
              (then (f32.store (i32.add (local.get $mn) (local.get $o4)) (local.get $x))))
            (if (f32.gt (local.get $x) (f32.load (i32.add (local.get $mx) (local.get $o4))))
              (then (f32.store (i32.add (local.get $mx) (local.get $o4)) (local.get $x))))
            (i32.store (i32.add (local.get $np) (local.get $o4))
              (i32.add (i32.load (i32.add (local.get $np) (local.get $o4))) (f32.le (local.get $x) (f32.const 0))))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $l1)))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $lo_r))))
)
