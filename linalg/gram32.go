package linalg

import (
	"math"
	"sync/atomic"
)

// Tiles and blocks of the Float32 Gram kernel. A row block of gramKC rows of
// X is copied into panels of gram32P = 24 float32 columns, each zero-padded
// and stored row by row (k-major), as the float64 kernel's panels but twice
// as wide for the same 96 bytes per row. A register tile of XᵀX is
// gram32MR = 4 rows (four consecutive columns of one panel, broadcast) by
// gram32NR = 24 columns (a whole panel, three AVX2 vectors of 8 float32):
// 12 accumulators. The products and sums are not fused (VMULPS, VADDPS),
// so the assembly and the Go kernel round alike; the product needs a
// register of its own, so the third B vector is read from memory by its
// four multiplies instead of being held: 12 accumulators, 2 B vectors, a
// broadcast A value and the product fill the 16 YMM registers. Per step the
// tile does 12 multiplies and 12 adds (6 cycles on two multiply and two add
// pipes, the throughput of 12 fused multiply-adds) for 6 vector and 4
// scalar loads. A 6×16 tile would have the same ratio but 6 does not divide
// the panel width; 4×24 keeps the float64 kernel's layout and work units.
//
// One panel of a block (256·24·4 = 24 KiB) fits in a 32 KiB L1 data cache; a
// work unit of gram32MT×gram32NT tiles (96×96 entries of XᵀX) reads 4 panels
// for its rows (96 KiB, kept in L2) while its 4 column panels stream past.
const (
	gram32P  = 24 // columns of X per packed float32 panel
	gram32MR = 4  // rows of XᵀX per register tile
	gram32NR = 24 // columns of XᵀX per register tile
	gram32MT = 24 // register tiles per work unit, down (96 rows of XᵀX)
	gram32NT = 4  // register tiles per work unit, across (96 columns)
)

// Entries that a block may hold for it to be computed in float32: zero, or
// between gram32Lo and gram32Hi in magnitude. Products of such entries are
// zero or between 2⁻¹²⁶ and 2¹¹², so none underflows (float32's normal range
// starts at 2⁻¹²⁶; a sum that cancels into the subnormal range is exact)
// and no sum of gramKC = 2⁸ of them overflows (2¹²⁰ < 2¹²⁸): every product
// and sum rounds with a relative error of at most 2⁻²⁴. Other blocks are
// computed in float64.
const (
	gram32Lo = 0x1p-63
	gram32Hi = 0x1p56
)

// The bit patterns of |v| (the sign bit cleared) compare as unsigned
// integers in the order of the magnitudes, NaN above +Inf above maxAbs32:
// the packing routines classify entries with integer comparisons.
var (
	gram32MaxBits = math.Float32bits(maxAbs32)
	gram32HiBits  = math.Float32bits(gram32Hi)
	gram32LoBits  = math.Float32bits(gram32Lo)
)

// gram32Class reports whether v is bad (NaN, ±Inf, above MaxAbs: an error)
// and whether it is wide (bad, or outside the float32 range of gram32Lo,
// gram32Hi and not zero: the block is computed in float64).
func gram32Class(v float32) (bad, wide bool) {
	a := math.Float32bits(v) &^ (1 << 31)
	return a > gram32MaxBits, a > gram32HiBits || a != 0 && a < gram32LoBits
}

// gram32Needed reports whether tile (a, b) meets the upper triangle: its
// last column is at or right of its first row.
func gram32Needed(a, b int) bool { return gram32NR*b+gram32NR-1 >= gram32MR*a }

// gram32UseAsm selects the assembly kernel and packing; tests switch it off
// to test the pure-Go ones on the same machine.
var gram32UseAsm = gram32HasAsm

// Block status bits set by the packing of a block.
const (
	gram32Bad  = 1 // a NaN, ±Inf or entry above MaxAbs: ErrNonFinite
	gram32Wide = 2 // an entry outside [gram32Lo, gram32Hi]: compute in float64
)

// gramAccumulate32 is gramAccumulate for Float32 on linalg's kernels: each
// block of gramKC rows is multiplied in float32 (or, if it holds an entry
// outside the float32 range, in float64 as by gramAccumulate64) and added
// into the float64 result in block order.
func gramAccumulate32(x *Matrix32, workers int) (c []float64, ldc int, err error) {
	n, d := x.Rows, x.Cols
	np := (d + gram32P - 1) / gram32P // panels
	na := (d + gram32MR - 1) / gram32MR
	ldc = np * gram32P // ≥ the float64 kernel's stride, so wide blocks fit
	c = make([]float64, ldc*ldc)
	kc := min(gramKC, n)
	// Two pack buffers: block t is multiplied while block t+1 is packed, by
	// the same goroutines, with one barrier per block.
	packs := [2][]float32{make([]float32, np*gram32P*kc), make([]float32, np*gram32P*min(kc, max(n-kc, 1)))}
	var status [2]atomic.Int32
	units := gramUnits(na, np, gram32MT, gram32NT, gram32Needed)
	useAsm := gram32UseAsm
	kernel := gram32KernelGo
	if useAsm {
		kernel = gram32KernelAsm
	}
	var wide []float64 // scratch of a block computed in float64

	const packRows = 32 // rows packed per task
	packTasks := func(r0 int) int {
		if r0 >= n {
			return 0
		}
		return (min(kc, n-r0) + packRows - 1) / packRows
	}
	packTask := func(buf []float32, st *atomic.Int32, r0, t int) {
		kb := min(kc, n-r0)
		if f := gram32Pack(buf, x, r0, kb, t*packRows, min(kb, (t+1)*packRows), useAsm); f != 0 {
			st.Or(f)
		}
	}
	parallelFor(packTasks(0), workers, func(t int) { packTask(packs[0], &status[0], 0, t) })
	for blk, r0 := 0, 0; r0 < n; blk, r0 = blk+1, r0+kc {
		st := status[blk%2].Load()
		if st&gram32Bad != 0 {
			// Report the first bad entry of x, whichever goroutine met one.
			return nil, 0, gramBadInput(x)
		}
		kb := min(kc, n-r0)
		pack, next, nextStatus := packs[blk%2], packs[(blk+1)%2], &status[(blk+1)%2]
		nextStatus.Store(0)
		if st&gram32Wide != 0 {
			sub := &Matrix32{Rows: kb, Cols: d, Data: x.Data[r0*d : (r0+kb)*d]}
			var ldw int
			if wide, ldw, err = gramAccumulate64(sub, workers, wide); err != nil {
				return nil, 0, err
			}
			for i := range d {
				dst := c[i*ldc+i : i*ldc+d]
				for j, v := range wide[i*ldw+i : i*ldw+d] {
					dst[j] += v
				}
			}
			parallelFor(packTasks(r0+kc), workers, func(t int) { packTask(next, nextStatus, r0+kc, t) })
			continue
		}
		parallelFor(len(units)+packTasks(r0+kc), workers, func(t int) {
			if t >= len(units) {
				packTask(next, nextStatus, r0+kc, t-len(units))
				return
			}
			u := units[t]
			for b := u.b0; b < u.b1; b++ {
				pb := pack[b*gram32P*kb : (b+1)*gram32P*kb]
				for a := u.a0; a < u.a1 && gram32Needed(a, b); a++ {
					p, off := a*gram32MR/gram32P, a*gram32MR%gram32P
					kernel(kb, pack[p*gram32P*kb+off:(p+1)*gram32P*kb], pb, c[a*gram32MR*ldc+b*gram32NR:], ldc)
				}
			}
		})
	}
	return c, ldc, nil
}

// gram32Pack copies rows [r0+i0, r0+i1) of x into the float32 panels of a
// block of kb rows starting at row r0, zero-padding the last panel, and
// returns the status bits (gram32Bad, gram32Wide) of the entries it met.
func gram32Pack(pack []float32, x *Matrix32, r0, kb, i0, i1 int, useAsm bool) int32 {
	d := x.Cols
	var bad, wide bool
	for i := i0; i < i1; i++ {
		row := x.Data[(r0+i)*d : (r0+i+1)*d]
		var b, w bool
		if useAsm {
			b, w = gram32PackRowAsm(pack[i*gram32P:], row, gram32P*kb)
		} else {
			b, w = gram32PackRowGo(pack[i*gram32P:], row, gram32P*kb)
		}
		bad, wide = bad || b, wide || w
	}
	var f int32
	if bad {
		f |= gram32Bad
	}
	if wide {
		f |= gram32Wide
	}
	return f
}

// gram32PackRowGo stores row (one row of X) in the panels starting at dst:
// the values 24p…24p+23 at dst[p*stride:], the last panel zero-padded. It
// reports whether it met a bad and a wide value (see gram32Class).
func gram32PackRowGo(dst, row []float32, stride int) (bad, wide bool) {
	full := len(row) / gram32P
	for p := range full {
		copy(dst[p*stride:p*stride+gram32P], row[p*gram32P:(p+1)*gram32P])
	}
	for _, v := range row {
		b, w := gram32Class(v)
		bad, wide = bad || b, wide || w
	}
	gram32PackTail(dst, row, full, stride)
	return bad, wide
}

// gram32PackTail stores the values of row past the full panels, zero-padded,
// in panel number full.
func gram32PackTail(dst, row []float32, full, stride int) {
	rem := row[full*gram32P:]
	if len(rem) == 0 {
		return
	}
	out := dst[full*stride : full*stride+gram32P]
	copy(out, rem)
	clear(out[len(rem):])
}

// gram32KernelGo computes one 4×24 tile of a block's contribution to XᵀX in
// float32, added into float64:
//
//	for i < 4, j < 24: s = 0; for r < k: s = fl32(s + fl32(a[24r+i]·b[24r+j])); c[i*ldc+j] += float64(s)
//
// a and b hold k rows of 24 float32 values (a at an offset of 0, 4, …, 20
// into its panel). Every product is rounded to float32 before it is added
// (the explicit conversion forbids the compiler to fuse them), in the order
// of the assembly kernel, which gives the same bits.
func gram32KernelGo(k int, a, b []float32, c []float64, ldc int) {
	_ = a[gram32P*(k-1)+gram32MR-1]
	b = b[:gram32P*k]
	_ = c[(gram32MR-1)*ldc+gram32NR-1]
	for i := 0; i < gram32MR; i += 2 {
		for j := 0; j < gram32NR; j += 4 {
			var s00, s01, s02, s03, s10, s11, s12, s13 float32
			ai := i
			for r := range k {
				a0, a1 := a[ai], a[ai+1]
				ai += gram32P
				br := b[gram32P*r+j : gram32P*r+j+4 : gram32P*r+j+4]
				s00 += float32(a0 * br[0])
				s01 += float32(a0 * br[1])
				s02 += float32(a0 * br[2])
				s03 += float32(a0 * br[3])
				s10 += float32(a1 * br[0])
				s11 += float32(a1 * br[1])
				s12 += float32(a1 * br[2])
				s13 += float32(a1 * br[3])
			}
			c0 := c[i*ldc+j : i*ldc+j+4 : i*ldc+j+4]
			c0[0] += float64(s00)
			c0[1] += float64(s01)
			c0[2] += float64(s02)
			c0[3] += float64(s03)
			c1 := c[(i+1)*ldc+j : (i+1)*ldc+j+4 : (i+1)*ldc+j+4]
			c1[0] += float64(s10)
			c1[1] += float64(s11)
			c1[2] += float64(s12)
			c1[3] += float64(s13)
		}
	}
}

// The A tile's rows lie within one panel.
var _ = [1]struct{}{}[gram32P%gram32MR]
