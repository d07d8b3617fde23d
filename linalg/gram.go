package linalg

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/mat"
)

// gramUseAsm selects the assembly kernel; tests switch it off to test the
// pure-Go kernel on the same machine.
var gramUseAsm = gramHasAsm

// Gram returns XᵀX, the d×d Gram matrix of the rows of x (n×d), accumulated
// in float64: GramPrecision(x, workers, Float64).
//
// The float32 entries are converted to float64, so every product is exact;
// the rows are summed in blocks of a fixed number of rows, each block from
// zero in row order, and the block sums are added in block order. The
// partition into blocks depends on n alone, so the result is bit-identical
// for any workers count (0 means GOMAXPROCS), and for the assembly kernel
// (amd64 with AVX2 and FMA) and the pure-Go one (other CPUs, or the purego
// build tag). Its error is that of float64 summation: each entry is within
// about (256 + n/256)·2⁻⁵³ of Σ|x_ri·x_rj| of the exact value.
//
// If a float64 BLAS other than gonum's has been installed with blas64.Use
// (see UseOpenBLAS), Gram calls its Dsyrk once per block of rows, on the
// rows converted to float64, instead: the products are still exact, and the
// bits are those of that BLAS.
//
// Gram returns an error wrapping ErrEmpty if x has no rows or columns,
// ErrShape if len(x.Data) ≠ x.Rows·x.Cols, and ErrNonFinite if an entry is
// NaN, ±Inf or larger than MaxAbs in magnitude.
func Gram(x *Matrix32, workers int) (*mat.SymDense, error) {
	return GramPrecision(x, workers, Float64)
}

// GramPrecision returns XᵀX, the d×d Gram matrix of the rows of x (n×d),
// computed in precision p (see Precision) and accumulated in float64.
//
// Float64 is Gram. Float32 multiplies and sums in float32 over blocks of
// gramKC = 256 rows and adds each block's float32 result, converted to
// float64, into the float64 sum, in block order. Each entry is then within
// (256+1)·2⁻²⁴ of Σ|x_ri·x_rj| over each block's rows, plus float64's
// (n/256)·2⁻⁵³ across blocks, of the exact value (Higham, Accuracy and
// Stability of Numerical Algorithms, §3.1 and §4.2); the typical error is
// √256 = 16 times smaller. A block whose entries are all zero or between 2⁻⁶³
// and 2⁵⁶ in magnitude is computed in float32; any other block (with an
// entry whose products could underflow or whose sums could overflow
// float32) is computed exactly as Float64 computes it, so the bound holds
// for every input that is accepted. The blocks' partition depends on n
// alone, so the result is bit-identical for any workers count, and for the
// assembly kernel (amd64 with AVX2 and FMA) and the pure-Go one (other CPUs,
// or the purego build tag), which both round each multiply-add once (fused).
// Without the assembly kernel, Float32 is slower than Float64.
//
// Installed BLAS (see UseOpenBLAS): Float64 calls the float64 BLAS's Dsyrk
// if one is installed with blas64.Use; Float32 calls the float32 BLAS's
// Ssyrk, once per block of gramBLASRows = 2560 rows, if one is installed
// with blas32.Use. The bound above then holds with 2560 in place of 256,
// plus at most 2⁻¹⁴⁹ per product for products below float32's normal range
// (entries below about 10⁻¹⁹), and the bits are those of that BLAS: still
// independent of workers, but not equal to the pure-Go ones.
//
// The errors are those of Gram, and ErrParam for an unknown precision.
func GramPrecision(x *Matrix32, workers int, p Precision) (*mat.SymDense, error) {
	if err := gramCheck(x); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	g := mat.NewSymDense(x.Cols, nil)
	if err := AddGramPrecision(g, x, workers, p); err != nil {
		return nil, err
	}
	return g, nil
}

// AddGram adds XᵀX to dst: dst ← dst + Gram(x), where Gram(x) is computed as
// by Gram, bit for bit, and then added entry by entry. dst must be d×d with
// d = x.Cols, or empty, in which case it is resized to d×d and zeroed. On
// error dst is unchanged. The errors are those of Gram, and ErrShape for a dst
// of the wrong size.
func AddGram(dst *mat.SymDense, x *Matrix32, workers int) error {
	return AddGramPrecision(dst, x, workers, Float64)
}

// AddGramPrecision adds XᵀX computed in precision p to dst: dst ← dst +
// GramPrecision(x, workers, p), bit for bit, added entry by entry. dst must
// be d×d with d = x.Cols, or empty, in which case it is resized to d×d and
// zeroed. On error dst is unchanged. The errors are those of
// GramPrecision, and ErrShape for a dst of the wrong size. The result does
// not depend on workers.
func AddGramPrecision(dst *mat.SymDense, x *Matrix32, workers int, p Precision) error {
	if err := gramCheck(x); err != nil {
		return err
	}
	if err := p.check(); err != nil {
		return err
	}
	if dst == nil {
		return fmt.Errorf("linalg: nil Gram destination: %w", ErrShape)
	}
	d := x.Cols
	if !dst.IsEmpty() && dst.SymmetricDim() != d {
		return fmt.Errorf("linalg: Gram destination is %d×%d, want %d×%d: %w",
			dst.SymmetricDim(), dst.SymmetricDim(), d, d, ErrShape)
	}
	w, err := workerCount(workers)
	if err != nil {
		return err
	}
	c, ldc, err := gramAccumulate(x, w, p)
	if err != nil {
		return err
	}
	if dst.IsEmpty() {
		dst.ReuseAsSym(d)
	}
	raw := dst.RawSymmetric() // upper triangle, row-major
	for i := range d {
		row := raw.Data[i*raw.Stride+i : i*raw.Stride+d]
		for j, v := range c[i*ldc+i : i*ldc+d] {
			row[j] += v
		}
	}
	return nil
}

// gramCheck checks that x is non-empty and consistent; its entries are
// checked while they are packed.
func gramCheck(x *Matrix32) error {
	if x == nil || x.Rows <= 0 || x.Cols <= 0 {
		return fmt.Errorf("linalg: matrix with no rows or columns: %w", ErrEmpty)
	}
	if len(x.Data) != x.Rows*x.Cols {
		return fmt.Errorf("linalg: %d×%d matrix with %d values: %w", x.Rows, x.Cols, len(x.Data), ErrShape)
	}
	return nil
}

// workerCount maps a workers argument to a goroutine count: 0 means
// GOMAXPROCS, negative is an error.
func workerCount(workers int) (int, error) {
	if workers < 0 {
		return 0, fmt.Errorf("linalg: workers = %d, want ≥ 0 (0 means GOMAXPROCS): %w", workers, ErrParam)
	}
	if workers == 0 {
		return runtime.GOMAXPROCS(0), nil
	}
	return workers, nil
}

// parallelFor runs f(t) for every t in [0, tasks) on up to workers
// goroutines, handing out tasks in increasing order.
func parallelFor(tasks, workers int, f func(t int)) {
	workers = min(workers, tasks)
	if workers <= 1 {
		for t := range tasks {
			f(t)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				f(t)
			}
		})
	}
	wg.Wait()
}

// gramUnit is a rectangle of register tiles of XᵀX computed by one goroutine
// for one block: A tiles [a0, a1) (rows 4a…) × B tiles [b0, b1) (columns 12b…
// for the float64 kernel, 24b… for the float32 one).
type gramUnit struct{ a0, a1, b0, b1 int }

// gramNeeded reports whether tile (a, b) meets the upper triangle: its last
// column is at or right of its first row.
func gramNeeded(a, b int) bool { return gramNR*b+gramNR-1 >= gramMR*a }

// gramAccumulate returns XᵀX in precision p (checked by the caller) in a
// zero-padded row-major buffer with stride ldc; only entries (i, j) with
// i ≤ j < d are meaningful. Each precision runs on the installed BLAS of its
// type if there is one (Dsyrk, Ssyrk), on linalg's kernels otherwise.
func gramAccumulate(x *Matrix32, workers int, p Precision) (c []float64, ldc int, err error) {
	switch {
	case p == Float32 && gramUseBLAS32():
		return gramAccumulateSsyrk(x, workers)
	case p == Float32:
		return gramAccumulate32(x, workers)
	case gramUseBLAS():
		return gramAccumulateDsyrk(x, workers)
	}
	return gramAccumulate64(x, workers, nil)
}

// gramAccumulate64 is gramAccumulate for Float64 on linalg's kernel. If c is
// long enough it is cleared and used for the result.
func gramAccumulate64(x *Matrix32, workers int, c []float64) (_ []float64, ldc int, err error) {
	n, d := x.Rows, x.Cols
	np := (d + gramP - 1) / gramP // panels
	na := (d + gramMR - 1) / gramMR
	nb := np
	ldc = np * gramP
	if len(c) >= ldc*ldc {
		c = c[:ldc*ldc]
		clear(c)
	} else {
		c = make([]float64, ldc*ldc)
	}
	kc := min(gramKC, n)
	// Two pack buffers: block t is multiplied while block t+1 is packed, by
	// the same goroutines, with one barrier per block.
	packs := [2][]float64{make([]float64, np*gramP*kc), make([]float64, np*gramP*min(kc, max(n-kc, 1)))}

	units := gramUnits(na, nb, gramMT, gramNT, gramNeeded)
	kernel := gramKernelGo
	if gramUseAsm {
		kernel = gramKernelAsm
	}

	const packRows = 32 // rows packed per task
	var bad atomic.Bool
	packTasks := func(r0 int) int {
		if r0 >= n {
			return 0
		}
		return (min(kc, n-r0) + packRows - 1) / packRows
	}
	packTask := func(buf []float64, r0, t int) {
		kb := min(kc, n-r0)
		if !gramPack(buf, x, r0, kb, t*packRows, min(kb, (t+1)*packRows), gramUseAsm) {
			bad.Store(true)
		}
	}
	parallelFor(packTasks(0), workers, func(t int) { packTask(packs[0], 0, t) })
	for blk, r0 := 0, 0; r0 < n; blk, r0 = blk+1, r0+kc {
		if bad.Load() {
			// Report the first bad entry of x, whichever goroutine met one.
			return nil, 0, gramBadInput(x)
		}
		kb := min(kc, n-r0)
		pack, next := packs[blk%2], packs[(blk+1)%2]
		parallelFor(len(units)+packTasks(r0+kc), workers, func(t int) {
			if t >= len(units) {
				packTask(next, r0+kc, t-len(units))
				return
			}
			u := units[t]
			for b := u.b0; b < u.b1; b++ {
				pb := pack[b*gramP*kb : (b+1)*gramP*kb]
				for a := u.a0; a < u.a1 && gramNeeded(a, b); a++ {
					p, off := a*gramMR/gramP, a*gramMR%gramP
					kernel(kb, pack[p*gramP*kb+off:(p+1)*gramP*kb], pb, c[a*gramMR*ldc+b*gramNR:], ldc)
				}
			}
		})
	}
	return c, ldc, nil
}

// gramUnits returns the work units of a grid of na×nb register tiles, mt×nt
// tiles each, that contain a tile meeting the upper triangle.
func gramUnits(na, nb, mt, nt int, needed func(a, b int) bool) []gramUnit {
	var units []gramUnit
	for a0 := 0; a0 < na; a0 += mt {
		for b0 := 0; b0 < nb; b0 += nt {
			u := gramUnit{a0, min(a0+mt, na), b0, min(b0+nt, nb)}
			if needed(u.a0, u.b1-1) {
				units = append(units, u)
			}
		}
	}
	return units
}

// gramBadInput returns the error for the first NaN, ±Inf or too large
// entry of x, which a packing routine met.
func gramBadInput(x *Matrix32) error {
	if err := x.Check(); err != nil {
		return err
	}
	panic("linalg: internal: packing reported a bad entry that Check does not find")
}

// maxAbs32 is the largest float32 not above MaxAbs: a float32 v is accepted
// if |v| ≤ maxAbs32, that is if |float64(v)| ≤ MaxAbs.
var maxAbs32 = math.Nextafter32(float32(MaxAbs), 0)

// gramPack converts rows [r0+i0, r0+i1) of x to float64 and stores them in
// the panels of a block of kb rows starting at row r0, zero-padding the last
// panel. It reports false if it met a NaN, ±Inf or an entry larger than
// MaxAbs in magnitude.
func gramPack(pack []float64, x *Matrix32, r0, kb, i0, i1 int, useAsm bool) bool {
	d := x.Cols
	ok := true
	for i := i0; i < i1; i++ {
		row := x.Data[(r0+i)*d : (r0+i+1)*d]
		if useAsm {
			ok = gramPackRowAsm(pack[i*gramP:], row, gramP*kb) && ok
		} else {
			ok = gramPackRowGo(pack[i*gramP:], row, gramP*kb) && ok
		}
	}
	return ok
}

// gramPackRowGo stores row (one row of X) in the panels starting at dst: the
// values 12p…12p+11 at dst[p*stride:], the last panel zero-padded. It
// reports false if it met a NaN, ±Inf or a value larger than MaxAbs in
// magnitude.
func gramPackRowGo(dst []float64, row []float32, stride int) bool {
	ok := true
	full := len(row) / gramP
	for p := range full {
		src := row[p*gramP : (p+1)*gramP : (p+1)*gramP]
		out := dst[p*stride : p*stride+gramP : p*stride+gramP]
		for j, v := range src {
			ok = ok && v <= maxAbs32 && v >= -maxAbs32 // false for NaN too
			out[j] = float64(v)
		}
	}
	for _, v := range row[full*gramP:] {
		ok = ok && v <= maxAbs32 && v >= -maxAbs32
	}
	gramPackTail(dst, row, full, stride)
	return ok
}

// gramPackTail stores the values of row past the full panels, zero-padded,
// in panel number full.
func gramPackTail(dst []float64, row []float32, full, stride int) {
	rem := row[full*gramP:]
	if len(rem) == 0 {
		return
	}
	out := dst[full*stride : full*stride+gramP]
	for j, v := range rem {
		out[j] = float64(v)
	}
	clear(out[len(rem):])
}
