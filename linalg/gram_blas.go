package linalg

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// gramBLASRows is the number of rows of X per Ssyrk (or Dsyrk) call when a
// Gram runs on an installed BLAS: large enough for the BLAS to reach its
// speed, small enough to bound the float32 rounding of a block (see
// gramAccumulateSsyrk) and the float64 copy of a block (25 MB at d = 1280).
const gramBLASRows = 2560

// gramUseBLAS reports whether a float64 BLAS other than gonum's pure-Go one
// has been installed with blas64.Use, in which case Float64 Grams call its
// Dsyrk.
func gramUseBLAS() bool {
	switch blas64.Implementation().(type) {
	case gonum.Implementation, *gonum.Implementation:
		return false
	}
	return true
}

// gramUseBLAS32 reports whether a float32 BLAS other than gonum's has been
// installed with blas32.Use (UseOpenBLAS does), in which case Float32 Grams
// compute each block with its Ssyrk.
func gramUseBLAS32() bool {
	switch blas32.Implementation().(type) {
	case gonum.Implementation, *gonum.Implementation:
		return false
	}
	return true
}

// gramFloat32Max bounds the magnitude of the entries of a block computed in
// float32: products and their sums over gramBLASRows rows stay far below
// float32's range (3.4e38). A block is kept in float32 only if every diagonal
// entry of its float32 product, Σ_r x_ri² over the block's rows, is at most
// gramFloat32Max² (so every entry is at most gramFloat32Max in magnitude);
// otherwise, and for NaN or ±Inf entries, which make a diagonal entry NaN or
// +Inf, the block is computed again in float64, whose conversion checks the
// entries.
const gramFloat32Max = 1e15

// gramDsyrkBlock adds the Gram of blk (rows of d float32 values) into out
// with the installed blas64's Dsyrk, after converting blk to float64 in buf
// (at least len(blk) long). It returns ErrNonFinite (unwrapped: callers
// report the entry with Check) for a NaN, ±Inf or entry above MaxAbs.
func gramDsyrkBlock(out blas64.Symmetric, blk []float32, d int, buf []float64, workers int) error {
	kb := len(blk) / d
	if err := gramConvert(buf[:kb*d], blk, workers); err != nil {
		return err
	}
	a := blas64.General{Rows: kb, Cols: d, Stride: d, Data: buf[:kb*d]}
	blas64.Syrk(blas.Trans, 1, a, 1, out)
	return nil
}

// gramAccumulateDsyrk computes XᵀX with every product exact (Float64) on the
// installed blas64: each block of gramBLASRows rows is converted to float64
// and added into the result by Dsyrk, in block order. The BLAS's own
// threads do the multiplying; workers convert.
func gramAccumulateDsyrk(x *Matrix32, workers int) (c []float64, ldc int, err error) {
	n, d := x.Rows, x.Cols
	c = make([]float64, d*d)
	kc := min(gramBLASRows, n)
	buf := make([]float64, kc*d)
	out := blas64.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: c}
	for r0 := 0; r0 < n; r0 += kc {
		kb := min(kc, n-r0)
		if err := gramDsyrkBlock(out, x.Data[r0*d:(r0+kb)*d], d, buf, workers); err != nil {
			return nil, 0, gramBadInput(x)
		}
	}
	return c, d, nil
}

// gramAccumulateSsyrk computes XᵀX in Float32 on the installed blas32: each
// block of gramBLASRows rows is computed by Ssyrk in float32, as numpy
// computes X.T @ X from float32, and added into the float64 result in block
// order. Each entry of a block then carries a rounding error of at most
// about (gramBLASRows+1)·2⁻²⁴ of Σ|x_i x_j| over the block (typically
// √gramBLASRows times less; see TestOpenBLASGram). A block with large or
// non-finite entries (see gramFloat32Max) is converted to float64 and
// computed by the blas64's Dsyrk instead. The BLAS's own threads do the
// work.
//
// The input is read only by Ssyrk (its checks are on the product's
// diagonal), and with workers > 1 the loop is pipelined: while Ssyrk
// computes block b into one float32 buffer, a goroutine adds block b−1's
// product (the other buffer) into the float64 sum, so the BLAS's threads do
// not sit idle (spinning in sched_yield) between calls. The blocks are added
// in the same order either way: the result does not depend on workers.
func gramAccumulateSsyrk(x *Matrix32, workers int) (c []float64, ldc int, err error) {
	n, d := x.Rows, x.Cols
	c = make([]float64, d*d)
	kc := min(gramBLASRows, n)
	blocks := (n + kc - 1) / kc
	block := func(b int) []float32 { return x.Data[b*kc*d : min(n, (b+1)*kc)*d] }
	var buf []float64
	out := blas64.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: c}

	// c32[pending] holds the float32 product of the last block, not yet
	// added into c (pending < 0: none).
	c32 := [2][]float32{make([]float32, d*d), nil}
	pending := -1
	for b := range blocks {
		cur := 0
		if pending == 0 {
			cur = 1
			if c32[1] == nil {
				c32[1] = make([]float32, d*d)
			}
		}
		var done chan struct{}
		if prev := pending; prev >= 0 && workers > 1 {
			done = make(chan struct{})
			go func() {
				defer close(done)
				gramAddUpper(c, c32[prev], d)
			}()
		} else if prev >= 0 {
			gramAddUpper(c, c32[prev], d)
		}
		blk := block(b)
		a := blas32.General{Rows: len(blk) / d, Cols: d, Stride: d, Data: blk}
		blas32.Syrk(blas.Trans, 1, a, 0, blas32.Symmetric{Uplo: blas.Upper, N: d, Stride: d, Data: c32[cur]})
		if done != nil {
			<-done
		}
		pending = cur
		if !gramDiagBelow(c32[cur], d, gramFloat32Max*gramFloat32Max) {
			pending = -1
			if buf == nil {
				buf = make([]float64, kc*d)
			}
			if err := gramDsyrkBlock(out, blk, d, buf, workers); err != nil {
				return nil, 0, gramBadInput(x)
			}
		}
	}
	if pending >= 0 {
		gramAddUpper(c, c32[pending], d)
	}
	return c, d, nil
}

// gramDiagBelow reports whether every diagonal entry of the d×d row-major c32
// is at most limit (false for NaN).
func gramDiagBelow(c32 []float32, d int, limit float64) bool {
	for i := range d {
		if !(float64(c32[i*d+i]) <= limit) {
			return false
		}
	}
	return true
}

// gramAddUpper adds the upper triangle of the d×d row-major c32 into c.
func gramAddUpper(c []float64, c32 []float32, d int) {
	for i := range d {
		dst := c[i*d+i : i*d+d]
		for j, v := range c32[i*d+i : i*d+d] {
			dst[j] += float64(v)
		}
	}
}

// gramConvert converts src to float64 in dst on workers goroutines and
// returns ErrNonFinite if an entry is NaN, ±Inf or larger than MaxAbs.
func gramConvert(dst []float64, src []float32, workers int) error {
	const chunk = 1 << 16
	var bad bool
	tasks := (len(src) + chunk - 1) / chunk
	flags := make([]bool, tasks)
	parallelFor(tasks, workers, func(t int) {
		s := src[t*chunk : min(len(src), (t+1)*chunk)]
		dd := dst[t*chunk : t*chunk+len(s)]
		ok := true
		for i, v := range s {
			f := float64(v)
			ok = ok && f <= MaxAbs && f >= -MaxAbs
			dd[i] = f
		}
		flags[t] = !ok
	})
	for _, f := range flags {
		bad = bad || f
	}
	if bad {
		return ErrNonFinite
	}
	return nil
}
