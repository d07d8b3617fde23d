package linalg

import (
	"math"
	"sync/atomic"
)

// Tiles and blocks of the Float32 Gram kernel. A row block of gramKC rows of
// X is copied into panels of gram32P = 24 float32 columns, each zero-padded
// and stored row by row (k-major), as the float64 kernel's panels but twice
// as wide for the same 96 bytes per row. A register tile of XᵀX is
// gram32MR = 4 rows (four consecutive columns, an A tile, broadcast) by
// gram32NR = 24 columns (a whole panel, three AVX2 vectors of 8 float32):
// 12 accumulators, 3 B vectors and the broadcast A value fill the 16 YMM
// registers, with 7 loads per 12 fused multiply-adds, as in the float64
// kernel. (A 6×16 tile has the same ratio, but 6 does not divide the panel
// width.)
//
// The multiply-adds are fused: unfused VMULPS+VADDPS would round alike in
// Go and assembly without effort, but on the Zen 3 this was tuned on the
// broadcasts compete with the additions for the two FP add pipes, and the
// unfused kernel ran 25–40 % slower. gram32KernelGo computes the same fused
// operation exactly (fma32), so the two kernels still agree bit for bit.
//
// One panel of a block (256·24·4 = 24 KiB) and one A tile (256·4·4 = 4 KiB,
// packed apart, see gram32Pack) fit in a 32 KiB L1 data cache; a work unit
// of gram32MT×gram32NT tiles (96×96 entries of XᵀX) reads 24 A tiles for its
// rows (96 KiB, kept in L2) while its 4 column panels stream past.
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
	// Each holds the block's B panels, then the same values again as A tiles.
	packs := [2][]float32{make([]float32, 2*np*gram32P*kc), make([]float32, 2*np*gram32P*min(kc, max(n-kc, 1)))}
	var status [2]atomic.Int32
	units := gramUnits(na, np, gram32MT, gram32NT, gram32Needed)
	useAsm := gram32UseAsm
	kernel := gram32KernelGo
	if useAsm {
		kernel = gram32KernelAsm
	}
	var wide []float64 // scratch of a block computed in float64

	// Rows packed per task: each task copies them panel by panel (see
	// gram32Pack), and longer runs per panel measured faster.
	const packRows = 64
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
				tiles := pack[np*gram32P*kb:]
				for a := u.a0; a < u.a1 && gram32Needed(a, b); a++ {
					kernel(kb, tiles[a*gram32MR*kb:(a+1)*gram32MR*kb], pb, c[a*gram32MR*ldc+b*gram32NR:], ldc)
				}
			}
		})
	}
	return c, ldc, nil
}

// gram32Pack copies rows [r0+i0, r0+i1) of x into the pack of a block of kb
// rows starting at row r0 — np = ⌈d/24⌉ panels of 24 columns (B operands),
// then the same values as 6·np tiles of 4 columns (A operands, tile a
// holding columns 4a…4a+3 row by row), zero-padded — and returns the status
// bits (gram32Bad, gram32Wide) of the entries it met.
//
// The A tiles are a copy so that a kernel call reads its 4 columns from 4
// KiB of contiguous memory, instead of from every cache line of a panel,
// which would push the 24 KiB B panel that consecutive calls share out of a
// 32 KiB L1 cache. The rows are copied one panel at a time, so that the
// writes go to 7 sequential streams (a panel and its 6 tiles) while the
// rows' lines, read from memory for the first panel, stay in L2 for the
// others.
func gram32Pack(pack []float32, x *Matrix32, r0, kb, i0, i1 int, useAsm bool) int32 {
	d := x.Cols
	np, full := (d+gram32P-1)/gram32P, d/gram32P
	half := np * gram32P * kb // where the A tiles start
	const tiles = gram32P / gram32MR
	rows := i1 - i0
	src := x.Data[(r0+i0)*d : (r0+i1)*d]
	var bad, wide bool
	for p := range full {
		dst := pack[p*gram32P*kb+i0*gram32P : p*gram32P*kb+i1*gram32P]
		dstA := pack[half+p*tiles*gram32MR*kb+i0*gram32MR : half+(p+1)*tiles*gram32MR*kb]
		var b, w bool
		if useAsm {
			b, w = gram32PackPanelAsm(dst, dstA, src[p*gram32P:], rows, d, gram32MR*kb)
		} else {
			b, w = gram32PackPanelGo(dst, dstA, src[p*gram32P:], rows, d, gram32MR*kb)
		}
		bad, wide = bad || b, wide || w
	}
	if full < np { // the last panel, zero-padded
		var buf [gram32P]float32
		for i := range rows {
			rem := src[i*d+full*gram32P : (i+1)*d]
			for _, v := range rem {
				b, w := gram32Class(v)
				bad, wide = bad || b, wide || w
			}
			copy(buf[:], rem)
			dst := pack[full*gram32P*kb+(i0+i)*gram32P : full*gram32P*kb+(i0+i+1)*gram32P]
			dstA := pack[half+full*tiles*gram32MR*kb+(i0+i)*gram32MR:]
			gram32PackPanelGo(dst, dstA, buf[:], 1, gram32P, gram32MR*kb)
		}
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

// gram32PackPanelGo copies rows 24-value rows of src, ldx values apart, to
// dst (rows of 24) and to the 6 tiles of 4 columns at dstA, strideA values
// apart (rows of 4), and reports whether it met a bad and a wide value (see
// gram32Class).
func gram32PackPanelGo(dst, dstA, src []float32, rows, ldx, strideA int) (bad, wide bool) {
	for i := range rows {
		s := src[i*ldx : i*ldx+gram32P]
		copy(dst[i*gram32P:(i+1)*gram32P], s)
		for t := range gram32P / gram32MR {
			copy(dstA[t*strideA+i*gram32MR:t*strideA+(i+1)*gram32MR], s[t*gram32MR:])
		}
		for _, v := range s {
			b, w := gram32Class(v)
			bad, wide = bad || b, wide || w
		}
	}
	return bad, wide
}

// gram32KernelGo computes one 4×24 tile of a block's contribution to XᵀX in
// float32, added into float64:
//
//	for i < 4, j < 24: s = 0; for r < k: s = fma32(a[4r+i], b[24r+j], s); c[i*ldc+j] += float64(s)
//
// a holds k rows of 4 float32 values (an A tile), b k rows of 24 (a B
// panel). Each multiply-add is rounded once, as the assembly kernel's fused
// VFMADD231PS, which gives the same bits.
func gram32KernelGo(k int, a, b []float32, c []float64, ldc int) {
	_ = a[gram32MR*k-1]
	b = b[:gram32P*k]
	_ = c[(gram32MR-1)*ldc+gram32NR-1]
	for i := range gram32MR {
		for j := 0; j < gram32NR; j += 4 {
			var s0, s1, s2, s3 float32
			ai := i
			for r := range k {
				av := a[ai]
				ai += gram32MR
				br := b[gram32P*r+j : gram32P*r+j+4 : gram32P*r+j+4]
				s0 = fma32(av, br[0], s0)
				s1 = fma32(av, br[1], s1)
				s2 = fma32(av, br[2], s2)
				s3 = fma32(av, br[3], s3)
			}
			ci := c[i*ldc+j : i*ldc+j+4 : i*ldc+j+4]
			ci[0] += float64(s0)
			ci[1] += float64(s1)
			ci[2] += float64(s2)
			ci[3] += float64(s3)
		}
	}
}

// fma32 returns a·b + s rounded once to float32 (to nearest, ties to even),
// as a fused float32 multiply-add, for finite a, b, s whose result is
// finite.
//
// The product p = a·b is exact in float64 (24+24 ≤ 53 significant bits), and
// p + s = t + e exactly, with t = fl64(p + s) and e recovered by TwoSum
// (Knuth, TAOCP vol. 2, §4.2.2), |e| ≤ ulp64(t)/2. Rounding t to float32
// gives the rounding of t + e unless t lies exactly halfway between two
// float32 values and e ≠ 0, when e breaks the tie; a float64 halfway
// between two normal float32 values has its low 29 significand bits equal
// to 1<<28, and below float32's normal range (|t| < 2⁻¹²⁶, where the
// spacing is coarser) the check is done in full.
func fma32(a, b, s float32) float32 {
	p := float64(a) * float64(b)
	sf := float64(s)
	t := p + sf
	r := float32(t)
	if bits := math.Float64bits(t); bits&(1<<29-1) != 1<<28 && bits&^(1<<63) >= 0x3810000000000000 { // 2⁻¹²⁶
		return r
	}
	bb := t - p
	e := (p - (t - bb)) + (sf - bb)
	if e == 0 || float64(r) == t {
		return r
	}
	// r is a neighbour of t; r2 the float32 on t's other side.
	r2 := math.Nextafter32(r, float32(math.Copysign(math.Inf(1), t-float64(r))))
	if mid := (float64(r) + float64(r2)) / 2; t != mid {
		return r
	}
	// t is halfway: the exact value p + s = t + e lies on e's side.
	if (e > 0) == (r2 > r) {
		return r2
	}
	return r
}

// A panel is a whole number of A tiles.
var _ = [1]struct{}{}[gram32P%gram32MR]
