package linalg

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// gemmBlockRows is the number of rows of X summed as one block by MulRtX
// (each block's product is summed from zero, and the blocks are added in
// order), the rows per task of RowNorms, and the rows per BLAS call when an
// installed BLAS does the products. The partition depends on this constant
// and the row count alone, never on the number of workers, which is what
// makes results bit-identical for any workers count. 256 rows keep a packed
// 12-feature panel at 24 KiB, in L1.
const gemmBlockRows = 256

// gemmResolveWorkers maps the workers argument to a goroutine count no larger
// than the number of tasks: 0 means GOMAXPROCS, negative is an error.
func gemmResolveWorkers(workers, tasks int) (int, error) {
	if workers < 0 {
		return 0, fmt.Errorf("linalg: workers = %d, want ≥ 0 (0 means GOMAXPROCS): %w", workers, ErrParam)
	}
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return max(1, min(workers, tasks)), nil
}

// gemmParallel runs task(t, worker) for t in [0, tasks) on the given number of
// goroutines and returns the error of the lowest-numbered failing task, so the
// error reported does not depend on scheduling. After a failure the remaining
// tasks are skipped.
func gemmParallel(tasks, workers int, task func(t, worker int) error) error {
	errs := make([]error, tasks)
	if workers <= 1 {
		for t := range tasks {
			if errs[t] = task(t, 0); errs[t] != nil {
				return errs[t]
			}
		}
		return nil
	}
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for !failed.Load() {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				if errs[t] = task(t, g); errs[t] != nil {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// gemmCheckMatrix32 checks that x is non-empty and consistent.
func gemmCheckMatrix32(name string, x *Matrix32) error {
	if x == nil || x.Rows <= 0 || x.Cols <= 0 {
		return fmt.Errorf("linalg: %s has no rows or columns: %w", name, ErrEmpty)
	}
	if len(x.Data) != x.Rows*x.Cols {
		return fmt.Errorf("linalg: %s is %d×%d with %d values: %w", name, x.Rows, x.Cols, len(x.Data), ErrShape)
	}
	return nil
}

// gemmCheckDense checks that a is non-empty and has only finite entries, and
// returns its raw storage.
func gemmCheckDense(name string, a *mat.Dense) (blas64.General, error) {
	if a == nil || a.IsEmpty() {
		return blas64.General{}, fmt.Errorf("linalg: %s has no rows or columns: %w", name, ErrEmpty)
	}
	raw := a.RawMatrix()
	for i := range raw.Rows {
		row := raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
		if gemmFinite64(row) {
			continue
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return raw, fmt.Errorf("linalg: %s(%d, %d) = %v: %w", name, i, j, v, ErrNonFinite)
			}
		}
	}
	return raw, nil
}

// gemmPrepareDst checks dst is r×c, or empty, in which case it is resized.
func gemmPrepareDst(dst *mat.Dense, r, c int, inputs ...*mat.Dense) (blas64.General, error) {
	if dst == nil {
		return blas64.General{}, fmt.Errorf("linalg: nil dst: %w", ErrEmpty)
	}
	for _, in := range inputs {
		if dst == in {
			return blas64.General{}, fmt.Errorf("linalg: dst is also an input: %w", ErrShape)
		}
	}
	if dst.IsEmpty() {
		dst.ReuseAs(r, c)
	} else if dr, dc := dst.Dims(); dr != r || dc != c {
		return blas64.General{}, fmt.Errorf("linalg: dst is %d×%d, want %d×%d: %w", dr, dc, r, c, ErrShape)
	}
	return dst.RawMatrix(), nil
}

// gemmUseAsm selects the assembly kernels; tests switch it off to test the
// pure-Go kernels on the same machine.
var gemmUseAsm = gemmHasAsm

// gemmKernel runs one register tile with the selected kernel.
func gemmKernel(useAsm bool, k int, a []float64, ia, sa int, b, c []float64, ldc int) {
	if useAsm {
		gemmKernelAsm(k, a, ia, sa, b, c, ldc)
	} else {
		gemmKernelGo(k, a, ia, sa, b, c, ldc)
	}
}

// gemmConv converts src into dst with the selected routine; see gemmConvGo.
func gemmConv(useAsm bool, dst []float64, src []float32) (float64, bool) {
	if useAsm {
		return gemmConvAsm(dst, src)
	}
	return gemmConvGo(dst, src)
}

// MulXWt sets dst = X·Wᵀ, the n×K matrix of scores of a linear model with
// weights W (K×d, one row per class) on the float32 rows of X (n×d).
//
// The products are float64: X is converted exactly, chunk by chunk of rows
// and gemmKC features, and multiplied by W with 4×12 register tiles (AVX2/FMA
// assembly on amd64, pure Go elsewhere or with the purego build tag). Each
// entry is the sum over the feature chunks, in order, of the chunk's fused
// multiply-adds in feature order: its error is that of float64 summation of
// d terms. Row blocks are spread over workers goroutines (0 means
// GOMAXPROCS); every entry is computed the same way whatever the workers
// count, so the result is bit-identical for all of them.
//
// If a BLAS other than gonum's has been installed with blas64.Use (see
// UseOpenBLAS), MulXWt converts blocks of rows and calls its Dgemm instead.
//
// dst must be n×K or empty (then it is resized); it is overwritten and must
// not share memory with w. MulXWt returns an error wrapping ErrEmpty,
// ErrShape or ErrNonFinite for empty inputs, mismatched dimensions or a NaN,
// ±Inf or over-large (|x| > MaxAbs) entry of X or W; dst is then unspecified.
func MulXWt(dst *mat.Dense, x *Matrix32, w *mat.Dense, workers int) error {
	return mulXWt(dst, nil, x, w, workers)
}

// MulXWtNorms is MulXWt that also sets norms[i] to ‖x_i‖, the Euclidean norm
// of row i of X accumulated in float64, in the same pass over X. norms must
// have length n (else ErrShape). The norms are bit-identical for any workers
// count, but they are summed in a different order from RowNorms' and may
// differ from it in the last bit.
func MulXWtNorms(dst *mat.Dense, norms []float64, x *Matrix32, w *mat.Dense, workers int) error {
	if norms == nil {
		return fmt.Errorf("linalg: nil norms: %w", ErrShape)
	}
	return mulXWt(dst, norms, x, w, workers)
}

func mulXWt(dst *mat.Dense, norms []float64, x *Matrix32, w *mat.Dense, workers int) error {
	dr, wr, err := mulXWtPrepare(dst, norms, x, w)
	if err != nil {
		return err
	}
	return mulXWt64(dr, norms, x, wr, workers)
}

// mulXWtPrepare checks the arguments of X·Wᵀ and returns the raw storage of
// dst (resized if empty) and of W.
func mulXWtPrepare(dst *mat.Dense, norms []float64, x *Matrix32, w *mat.Dense) (dr, wr blas64.General, err error) {
	if err := gemmCheckMatrix32("X", x); err != nil {
		return dr, wr, err
	}
	wr, err = gemmCheckDense("W", w)
	if err != nil {
		return dr, wr, err
	}
	n, d, k := x.Rows, x.Cols, wr.Rows
	if wr.Cols != d {
		return dr, wr, fmt.Errorf("linalg: X·Wᵀ with X %d×%d and W %d×%d: %w", n, d, wr.Rows, wr.Cols, ErrShape)
	}
	if norms != nil && len(norms) != n {
		return dr, wr, fmt.Errorf("linalg: row norms of %d rows into %d values: %w", n, len(norms), ErrShape)
	}
	dr, err = gemmPrepareDst(dst, n, k, w)
	return dr, wr, err
}

// mulXWt64 is MulXWt (Float64) on checked arguments.
func mulXWt64(dr blas64.General, norms []float64, x *Matrix32, wr blas64.General, workers int) error {
	n, d, k := x.Rows, x.Cols, wr.Rows
	if gramUseBLAS() {
		return mulXWtBLAS(dr, norms, x, wr, workers)
	}
	tasks := (n + gemmMB - 1) / gemmMB
	nw, err := gemmResolveWorkers(workers, tasks)
	if err != nil {
		return err
	}
	useAsm := gemmUseAsm

	// W packed in panels of 12 classes, feature-major: wp[p*12*d + 12r + j] =
	// W[12p+j, r], zero for classes past K.
	kp := (k + gemmNR - 1) / gemmNR
	ldc := kp * gemmNR
	wpp := gemmGet(kp * gemmNR * d)
	defer gemmPut(wpp)
	wp := *wpp
	clear(wp)
	for l := range k {
		p, j := l/gemmNR, l%gemmNR
		panel := wp[p*gemmNR*d:]
		for r, v := range wr.Data[l*wr.Stride : l*wr.Stride+d] {
			panel[gemmNR*r+j] = v
		}
	}

	type scratch struct{ a, c, ss []float64 }
	bufs := make([]scratch, nw)
	held := make([]*[]float64, 0, 3*nw)
	defer func() { gemmPut(held...) }()
	mbMax := min(gemmMB, n)
	mbPad := (mbMax + gemmMR - 1) / gemmMR * gemmMR
	var bad atomic.Bool
	var mu sync.Mutex
	_ = gemmParallel(tasks, nw, func(t, g int) error {
		s := &bufs[g]
		if s.a == nil {
			pa, pc, ps := gemmGet(mbPad*min(gemmKC, d)), gemmGet(mbPad*ldc), gemmGet(mbPad)
			s.a, s.c, s.ss = *pa, *pc, *ps
			mu.Lock()
			held = append(held, pa, pc, ps)
			mu.Unlock()
		}
		i0 := t * gemmMB
		mb := min(gemmMB, n-i0)
		mp := (mb + gemmMR - 1) / gemmMR * gemmMR
		c := s.c[:mp*ldc]
		clear(c)
		ss := s.ss[:mb]
		clear(ss)
		for c0 := 0; c0 < d; c0 += gemmKC {
			kc := min(gemmKC, d-c0)
			a := s.a[:mp*kc]
			for i := range mb {
				row := x.Data[(i0+i)*d+c0 : (i0+i)*d+c0+kc]
				v, ok := gemmConv(useAsm, a[i*kc:(i+1)*kc], row)
				if !ok {
					bad.Store(true)
				}
				ss[i] += v
			}
			clear(a[mb*kc:]) // zero rows padding the last register tile
			for p := range kp {
				b := wp[p*gemmNR*d+gemmNR*c0:]
				for i := 0; i < mp; i += gemmMR {
					gemmKernel(useAsm, kc, a[i*kc:], kc, 1, b, c[i*ldc+p*gemmNR:], ldc)
				}
			}
		}
		for i := range mb {
			copy(dr.Data[(i0+i)*dr.Stride:(i0+i)*dr.Stride+k], c[i*ldc:i*ldc+k])
			if norms != nil {
				norms[i0+i] = math.Sqrt(ss[i])
			}
		}
		return nil
	})
	if bad.Load() {
		return x.Check() // reports the first bad entry, whichever goroutine met one
	}
	return nil
}

// MulRtX sets dst = Rᵀ·X, the K×d matrix Σ_i r_i x_iᵀ: with R (n×K) the
// residuals of a linear model's loss on the float32 rows of X (n×d), it is
// the gradient of the summed loss with respect to the weights.
//
// The products are float64: X is converted exactly and packed in panels of
// 12 features, gemmBlockRows rows at a time, and multiplied with 4×12
// register tiles (AVX2/FMA assembly on amd64, pure Go elsewhere or with the
// purego build tag). Each entry is the sum over the row blocks, in order, of
// the block's fused multiply-adds in row order: its error is that of float64
// summation of n terms. The columns of dst are spread over workers
// goroutines (0 means GOMAXPROCS), each of which reads every row; every entry
// is computed the same way whatever the workers count, so the result is
// bit-identical for all of them, and no partial sums need reducing.
//
// If a BLAS other than gonum's has been installed with blas64.Use (see
// UseOpenBLAS), MulRtX calls its Dgemm on converted blocks of rows instead,
// and adds the blocks' products in block order.
//
// dst must be K×d or empty (then it is resized); it is overwritten and must
// not share memory with r. Errors are as for MulXWt, with R in place of W.
func MulRtX(dst *mat.Dense, r *mat.Dense, x *Matrix32, workers int) error {
	dr, rr, err := mulRtXPrepare(dst, r, x)
	if err != nil {
		return err
	}
	if err := gemmCheckR(rr, workers); err != nil {
		return err
	}
	return mulRtX64(dr, rr, x, workers)
}

// mulRtXPrepare checks the shapes of Rᵀ·X (not the values of R: see
// gemmCheckR) and returns the raw storage of dst (resized if empty) and of R.
func mulRtXPrepare(dst *mat.Dense, r *mat.Dense, x *Matrix32) (dr, rr blas64.General, err error) {
	if err := gemmCheckMatrix32("X", x); err != nil {
		return dr, rr, err
	}
	if r == nil || r.IsEmpty() {
		return dr, rr, fmt.Errorf("linalg: R has no rows or columns: %w", ErrEmpty)
	}
	rr = r.RawMatrix()
	n, d, k := x.Rows, x.Cols, rr.Cols
	if rr.Rows != n {
		return dr, rr, fmt.Errorf("linalg: Rᵀ·X with R %d×%d and X %d×%d: %w", rr.Rows, rr.Cols, n, d, ErrShape)
	}
	dr, err = gemmPrepareDst(dst, k, d, r)
	return dr, rr, err
}

// mulRtX64 is MulRtX (Float64) on checked arguments.
func mulRtX64(dr, rr blas64.General, x *Matrix32, workers int) error {
	n, d, k := x.Rows, x.Cols, rr.Cols
	if gramUseBLAS() {
		return mulRtXBLAS(dr, rr, x, workers)
	}
	useAsm := gemmUseAsm

	// Classes in groups of 4, read in place from R; a last group of fewer
	// than 4 classes is copied, zero-padded, to rt (n×4).
	kg := (k + gemmMR - 1) / gemmMR
	var rt []float64
	if k%gemmMR != 0 {
		l0 := (kg - 1) * gemmMR
		prt := gemmGet(n * gemmMR)
		defer gemmPut(prt)
		rt = *prt
		clear(rt)
		for i := range n {
			copy(rt[i*gemmMR:], rr.Data[i*rr.Stride+l0:i*rr.Stride+k])
		}
	}

	// Feature panels of 12, split into tasks of pp panels. How the panels are
	// split changes nothing in the arithmetic of any entry.
	np := (d + gemmNR - 1) / gemmNR
	nw, err := gemmResolveWorkers(workers, np)
	if err != nil {
		return err
	}
	pp := min(16, max(1, (np+4*nw-1)/(4*nw)))
	tasks := (np + pp - 1) / pp
	nw = min(nw, tasks)
	ldc := pp * gemmNR
	type scratch struct{ pack, c []float64 }
	bufs := make([]scratch, nw)
	held := make([]*[]float64, 0, 2*nw)
	defer func() { gemmPut(held...) }()
	var mu sync.Mutex
	kcMax := min(gemmBlockRows, n)
	var bad atomic.Bool
	_ = gemmParallel(tasks, nw, func(t, g int) error {
		s := &bufs[g]
		if s.pack == nil {
			pk, pc := gemmGet(pp*gemmNR*kcMax), gemmGet(kg*gemmMR*ldc)
			s.pack, s.c = *pk, *pc
			mu.Lock()
			held = append(held, pk, pc)
			mu.Unlock()
		}
		p0 := t * pp
		p1 := min(p0+pp, np)
		c0, c1 := p0*gemmNR, min(p1*gemmNR, d)
		c := s.c
		clear(c)
		for i0 := 0; i0 < n; i0 += gemmBlockRows {
			kb := min(gemmBlockRows, n-i0)
			stride := gemmNR * kb
			src := x.Data[i0*d+c0:]
			var ok bool
			if useAsm {
				ok = gemmPackAsm(s.pack, src, kb, c1-c0, d, stride)
			} else {
				ok = gemmPackGo(s.pack, src, kb, c1-c0, d, stride)
			}
			if !ok {
				bad.Store(true)
			}
			// Class groups outside, panels inside: the 4 columns of R a
			// group reads (kb cache lines) stay in L1 while the task's
			// panels (≤ 16·24 KiB) stream from L2. The other order re-reads
			// the whole kb×K block of R per panel, which for K = 1000
			// (2 MB per block) goes to memory.
			for gi := range kg {
				a, sa := rr.Data[i0*rr.Stride+gi*gemmMR:], rr.Stride
				if rt != nil && gi == kg-1 {
					a, sa = rt[i0*gemmMR:], gemmMR
				}
				for q := range p1 - p0 {
					b := s.pack[q*stride : (q+1)*stride]
					gemmKernel(useAsm, kb, a, 1, sa, b, c[gi*gemmMR*ldc+q*gemmNR:], ldc)
				}
			}
		}
		for l := range k {
			copy(dr.Data[l*dr.Stride+c0:l*dr.Stride+c1], c[l*ldc:l*ldc+c1-c0])
		}
		return nil
	})
	if bad.Load() {
		return x.Check()
	}
	return nil
}

// gemmCheckR reports the first NaN or ±Inf entry of R, in row-major order.
func gemmCheckR(rr blas64.General, workers int) error {
	blocks := (rr.Rows + gemmBlockRows - 1) / gemmBlockRows
	nw, err := gemmResolveWorkers(workers, blocks)
	if err != nil {
		return err
	}
	return gemmParallel(blocks, nw, func(b, _ int) error {
		for i := b * gemmBlockRows; i < min((b+1)*gemmBlockRows, rr.Rows); i++ {
			for l, v := range rr.Data[i*rr.Stride : i*rr.Stride+rr.Cols] {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("linalg: R(%d, %d) = %v: %w", i, l, v, ErrNonFinite)
				}
			}
		}
		return nil
	})
}

// RowNorms sets dst[i] to the Euclidean norm of row i of x, accumulated in
// float64. dst must have length x.Rows. Rows are spread over workers
// goroutines (0 means GOMAXPROCS); each row's norm is computed by one
// goroutine in a fixed order, so the result does not depend on workers.
// RowNorms returns an error wrapping ErrEmpty, ErrShape or ErrNonFinite for
// an empty x, a dst of the wrong length or a NaN, ±Inf or over-large
// (|x| > MaxAbs) entry; dst is then unspecified.
func RowNorms(dst []float64, x *Matrix32, workers int) error {
	if err := gemmCheckMatrix32("X", x); err != nil {
		return err
	}
	if len(dst) != x.Rows {
		return fmt.Errorf("linalg: row norms of %d rows into %d values: %w", x.Rows, len(dst), ErrShape)
	}
	blocks := (x.Rows + gemmBlockRows - 1) / gemmBlockRows
	nw, err := gemmResolveWorkers(workers, blocks)
	if err != nil {
		return err
	}
	return gemmParallel(blocks, nw, func(b, _ int) error {
		i0 := b * gemmBlockRows
		i1 := min(i0+gemmBlockRows, x.Rows)
		for i := i0; i < i1; i++ {
			var s float64
			for j, v := range x.Row(i) {
				f := float64(v)
				if !(math.Abs(f) <= MaxAbs) {
					return fmt.Errorf("linalg: entry (%d, %d) = %v: %w", i, j, v, ErrNonFinite)
				}
				s += f * f
			}
			dst[i] = math.Sqrt(s)
		}
		return nil
	})
}
