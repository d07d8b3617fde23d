package linalg

import (
	"math"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// gemm32BLASRowsRtX is the number of rows per Sgemm call of MulRtXPrecision's
// Float32 path on an installed BLAS: the float32 block of its error bound,
// the same as the pure-Go kernel's. (1024 and 2560 rows measured no faster
// at n = 50 000, d = 768, K = 100: 0.20–0.22 CPU-s against 0.20–0.24.)
const gemm32BLASRowsRtX = gemmBlockRows

// gemmUseBLAS32 reports whether a float32 BLAS other than gonum's has been
// installed with blas32.Use (UseOpenBLAS does); the Float32 products then
// call its Sgemm.
func gemmUseBLAS32() bool {
	switch blas32.Implementation().(type) {
	case gonum.Implementation, *gonum.Implementation:
		return false
	}
	return true
}

// gemm32BLASRowsXWt returns the rows per block of MulXWtPrecision's Float32
// path on an installed BLAS: a float32 block of scores of about 2 MiB,
// between 256 and 8192 rows, a multiple of 256 (5120 rows at K = 100). It
// depends on K alone, so every row is computed by the same calls for any
// workers count.
func gemm32BLASRowsXWt(k int) int {
	return max(1, min(32, (1<<19)/(k*gemmBlockRows))) * gemmBlockRows
}

// gemm32CheckRows checks rows [0, n) of x (NaN, ±Inf, |x| > MaxAbs) on
// workers goroutines, block by block, and sets norms[i] = ‖x_i‖ if norms is
// not nil: the squares of a whole row summed in the order of mulXWtBLAS, so
// the norms are MulXWtNorms' on the same BLAS, bit for bit.
func gemm32CheckRows(x *Matrix32, norms []float64, workers int) error {
	n, d := x.Rows, x.Cols
	blocks := (n + gemmBlockRows - 1) / gemmBlockRows
	nw, err := gemmResolveWorkers(workers, blocks)
	if err != nil {
		return err
	}
	useAsm := gemmUseAsm
	bufs := make([][]float32, nw)
	var bad atomic.Bool
	_ = gemmParallel(blocks, nw, func(b, g int) error {
		if bufs[g] == nil {
			bufs[g] = make([]float32, d)
		}
		for i := b * gemmBlockRows; i < min((b+1)*gemmBlockRows, n); i++ {
			ss, ok := gemm32Conv(useAsm, bufs[g], x.Row(i))
			if !ok {
				bad.Store(true)
			}
			if norms != nil {
				norms[i] = math.Sqrt(ss)
			}
		}
		return nil
	})
	if bad.Load() {
		return x.Check()
	}
	return nil
}

// mulXWtBLAS32 is MulXWtPrecision's Float32 path on an installed float32
// BLAS: X is checked (and its row norms taken) on the workers, W rounded to
// float32 once, then for each block of gemm32BLASRowsXWt(K) rows and each
// chunk of gemm32KC features one Sgemm computes the chunk's float32 scores
// from X in place, and they are added into dst in float64, chunk by chunk.
// It reports over = true if W does not fit float32 or a score overflowed.
func mulXWtBLAS32(dr blas64.General, norms []float64, x *Matrix32, wr blas64.General, workers int) (over bool, err error) {
	n, d, k := x.Rows, x.Cols, wr.Rows
	if err := gemm32CheckRows(x, norms, workers); err != nil {
		return false, err
	}
	w32 := make([]float32, k*d)
	for l := range k {
		for j, v := range wr.Data[l*wr.Stride : l*wr.Stride+d] {
			if !gemm32Fits(v) {
				return true, nil
			}
			w32[l*d+j] = float32(v)
		}
	}
	rows := gemm32BLASRowsXWt(k)
	c32 := make([]float32, min(rows, n)*k)
	for i0 := 0; i0 < n; i0 += rows {
		mb := min(rows, n-i0)
		for c0 := 0; c0 < d; c0 += gemm32KC {
			kc := min(gemm32KC, d-c0)
			a := blas32.General{Rows: mb, Cols: kc, Stride: d, Data: x.Data[i0*d+c0:]}
			b := blas32.General{Rows: k, Cols: kc, Stride: d, Data: w32[c0:]}
			c := blas32.General{Rows: mb, Cols: k, Stride: k, Data: c32}
			blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, b, 0, c)
			for i := range mb {
				out := dr.Data[(i0+i)*dr.Stride : (i0+i)*dr.Stride+k]
				in := c32[i*k : (i+1)*k]
				if c0 == 0 {
					for l, v := range in {
						out[l] = float64(v)
					}
				} else {
					for l, v := range in {
						out[l] += float64(v)
					}
				}
			}
		}
	}
	for i := range n {
		if !gemmFinite64(dr.Data[i*dr.Stride : i*dr.Stride+k]) {
			return true, nil
		}
	}
	return false, nil
}

// mulRtXBLAS32 is MulRtXPrecision's Float32 path on an installed float32
// BLAS (R's values unchecked): X is checked on the workers, then for each block of
// gemm32BLASRowsRtX rows R's block is rounded to float32, one Sgemm computes
// the block's float32 product with X's block in place, and the products are
// added into dst in float64 in block order. It reports over = true if an
// entry of R does not fit float32 (NaN, ±Inf or beyond float32's range) or
// an entry of the product overflowed.
func mulRtXBLAS32(dr, rr blas64.General, x *Matrix32, workers int) (over bool, err error) {
	n, d, k := x.Rows, x.Cols, rr.Cols
	if err := gemm32CheckRows(x, nil, workers); err != nil {
		return false, err
	}
	rows := gemm32BLASRowsRtX
	r32 := make([]float32, min(rows, n)*k)
	p32 := make([]float32, k*d)
	for i0 := 0; i0 < n; i0 += rows {
		kb := min(rows, n-i0)
		for i := range kb {
			for l, v := range rr.Data[(i0+i)*rr.Stride : (i0+i)*rr.Stride+k] {
				if !gemm32Fits(v) {
					return true, nil
				}
				r32[i*k+l] = float32(v)
			}
		}
		a := blas32.General{Rows: kb, Cols: k, Stride: k, Data: r32}
		b := blas32.General{Rows: kb, Cols: d, Stride: d, Data: x.Data[i0*d:]}
		blas32.Gemm(blas.Trans, blas.NoTrans, 1, a, b, 0, blas32.General{Rows: k, Cols: d, Stride: d, Data: p32})
		for l := range k {
			out := dr.Data[l*dr.Stride : l*dr.Stride+d]
			in := p32[l*d : (l+1)*d]
			if i0 == 0 {
				for j, v := range in {
					out[j] = float64(v)
				}
			} else {
				for j, v := range in {
					out[j] += float64(v)
				}
			}
		}
	}
	for l := range k {
		if !gemmFinite64(dr.Data[l*dr.Stride : l*dr.Stride+d]) {
			return true, nil
		}
	}
	return false, nil
}
