package linalg

import (
	"fmt"
	"math"
)

// Eigenvalues of a symmetric tridiagonal matrix by the implicit QL method
// with Wilkinson-type shifts (Bowdler, Martin, Reinsch and Wilkinson, "The
// QR and QL algorithms for symmetric matrices", Numer. Math. 11, 1968), with
// the eigenvectors accumulated separately.
//
// The iteration runs on the diagonal and subdiagonal alone and records the
// plane rotations of each sweep. The rotations act on columns of the
// eigenvector matrix Z, and each row of Z is transformed independently of
// the others, so they are applied in batches of many sweeps to row panels of
// Z that stay in cache: a panel holds 4 rows interleaved (column j of the 4
// rows is 4 consecutive values), so that one rotation of the 4 rows is one
// vector operation. The rows are split among goroutines by fixed groups of
// panels; each row sees the same operations in the same order whatever the
// split, so the result does not depend on the number of goroutines.

// rotPanelRows is the number of rows in a group of panels handed to the
// rotation kernel (three panels of 4 rows).
const rotPanelRows = 12

// rotBatchMax is the number of recorded rotations that triggers applying
// the batch (2 MiB of cosines and sines).
const rotBatchMax = 1 << 17

// rotSweep is one recorded QL sweep: rotations on the column pairs
// (i, i+1) for i = top−1 down to top−n, with cosines and sines at
// c[at : at+n] and s[at : at+n] of the batch.
type rotSweep struct{ top, n, at int }

// rotBatch holds recorded sweeps.
type rotBatch struct {
	sweeps []rotSweep
	c, s   []float64
}

// rotPanels is the eigenvector matrix held in panels: row i, column j is at
// z[(i/4)*4*cols + 4*j + i%4]; rows beyond Rows are zero padding up to a
// multiple of rotPanelRows.
type rotPanels struct {
	z          []float64
	rows, cols int
}

// rotPanelsLen returns the length of the panels of an n×n matrix.
func rotPanelsLen(n int) int {
	return (n + rotPanelRows - 1) / rotPanelRows * rotPanelRows * n
}

// newRotPanels copies the row-major n×n matrix q into panels, in buf if it
// is long enough (its contents are overwritten).
func newRotPanels(q []float64, n int, buf []float64) *rotPanels {
	z := buf
	if len(z) < rotPanelsLen(n) {
		z = make([]float64, rotPanelsLen(n))
	}
	z = z[:rotPanelsLen(n)]
	clear(z) // the padding rows, interleaved with the last real ones
	for i := range n {
		p := z[(i/4)*4*n+i%4:]
		for j, v := range q[i*n : (i+1)*n] {
			p[4*j] = v
		}
	}
	return &rotPanels{z: z, rows: n, cols: n}
}

// apply applies the batch's sweeps, in order, to every row of z.
func (z *rotPanels) apply(b *rotBatch, workers int, useAsm bool) {
	if len(b.sweeps) == 0 {
		return
	}
	groups := len(z.z) / (rotPanelRows * z.cols)
	stride := 4 * z.cols
	parallelFor(groups, workers, func(g int) {
		base := z.z[g*rotPanelRows*z.cols : (g+1)*rotPanelRows*z.cols]
		for _, sw := range b.sweeps {
			rotPanels3(useAsm, base, stride, sw.top, b.c[sw.at:sw.at+sw.n], b.s[sw.at:sw.at+sw.n])
		}
	})
	b.sweeps = b.sweeps[:0]
	b.c = b.c[:0]
	b.s = b.s[:0]
}

// rotPanels3 applies one sweep to the three panels at z, z[stride:] and
// z[2*stride:]: for t < len(c), with i = top−1−t, each row r of the panels
// has (x, y) = (row[i], row[i+1]) replaced by
//
//	row[i+1] = s[t]·x + c[t]·y,  row[i] = c[t]·x − s[t]·y.
func rotPanels3(useAsm bool, z []float64, stride, top int, c, s []float64) {
	if len(c) == 0 {
		return
	}
	if useAsm {
		rotPanels3Asm(z, stride, top, c, s)
		return
	}
	for p := range 3 {
		rotPanelGo(z[p*stride:(p+1)*stride], top, c, s)
	}
}

// rotPanelGo is rotPanels3 on one panel, in pure Go. The assembly kernel
// fuses c·x + (s·y) style products, so the two agree to rounding only.
func rotPanelGo(z []float64, top int, c, s []float64) {
	n := len(c)
	s = s[:n]
	y := z[4*top : 4*top+4 : 4*top+4]
	y0, y1, y2, y3 := y[0], y[1], y[2], y[3]
	for t := range n {
		i := top - 1 - t
		ct, st := c[t], s[t]
		x := z[4*i : 4*i+8 : 4*i+8]
		x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
		x[4] = st*x0 + ct*y0
		x[5] = st*x1 + ct*y1
		x[6] = st*x2 + ct*y2
		x[7] = st*x3 + ct*y3
		y0 = ct*x0 - st*y0
		y1 = ct*x1 - st*y1
		y2 = ct*x2 - st*y2
		y3 = ct*x3 - st*y3
	}
	out := z[4*(top-n) : 4*(top-n)+4 : 4*(top-n)+4]
	out[0], out[1], out[2], out[3] = y0, y1, y2, y3
}

// qlHypot returns √(f² + g²) without the scaling of math.Hypot when the
// squares can neither overflow nor lose precision to underflow.
func qlHypot(f, g float64) float64 {
	a := max(math.Abs(f), math.Abs(g))
	if a < 0x1p-450 || a > 0x1p450 {
		return math.Hypot(f, g)
	}
	return math.Sqrt(f*f + g*g)
}

// A rotApplier applies rotation batches to z in a goroutine of its own,
// in the order they are handed over, while the caller fills the next.
type rotApplier struct {
	z       *rotPanels
	workers int
	useAsm  bool
	todo    chan *rotBatch // batches to apply, in order
	free    chan *rotBatch // applied, emptied batches
	done    chan struct{}  // closed when the goroutine has exited
}

// newRotApplier starts an applier with two batches; with one worker it
// applies each batch in the caller's goroutine instead.
func newRotApplier(z *rotPanels, workers int, useAsm bool) *rotApplier {
	a := &rotApplier{z: z, workers: workers, useAsm: useAsm, free: make(chan *rotBatch, 2)}
	a.free <- &rotBatch{}
	a.free <- &rotBatch{}
	if workers > 1 {
		a.todo = make(chan *rotBatch, 1)
		a.done = make(chan struct{})
		go func() {
			defer close(a.done)
			for b := range a.todo {
				a.z.apply(b, a.workers, a.useAsm)
				a.free <- b
			}
		}()
	}
	return a
}

// next hands b (if not nil) over to be applied and returns an empty batch.
func (a *rotApplier) next(b *rotBatch) *rotBatch {
	if b != nil {
		if a.todo == nil {
			a.z.apply(b, a.workers, a.useAsm)
			a.free <- b
		} else {
			a.todo <- b
		}
	}
	return <-a.free
}

// close waits until every batch handed over has been applied.
func (a *rotApplier) close() {
	if a.todo != nil {
		close(a.todo)
		<-a.done
	}
}

// tridiagQL overwrites diag with the eigenvalues (unsorted) of the symmetric
// tridiagonal matrix with diagonal diag and subdiagonal off (len(off) =
// len(diag); off[n−1] is scratch), and applies the rotations to z, so that
// if z held Q on entry it holds Q·Z on return, the eigenvectors in its
// columns. The entries should be of order at most n in magnitude (the caller
// scales). It returns an error wrapping ErrNotConverged after 30·n sweeps.
func tridiagQL(diag, off []float64, z *rotPanels, workers int, useAsm bool) error {
	n := len(diag)
	off[n-1] = 0
	const (
		eps  = 0x1p-53
		tiny = 0x1p-1000
	)
	// Batches are applied by another goroutine while the iteration goes
	// on, two batches in turn; each row still sees the batches in order.
	ap := newRotApplier(z, workers, useAsm)
	defer ap.close()
	b := ap.next(nil)
	maxSweeps := 30 * n
	sweeps := 0
	for l := 0; l < n; {
		m := l
		for ; m < n-1; m++ {
			dd := math.Abs(diag[m]) + math.Abs(diag[m+1])
			if math.Abs(off[m]) <= eps*dd || math.Abs(off[m]) <= tiny {
				off[m] = 0
				break
			}
		}
		if m == l {
			l++
			continue
		}
		if sweeps++; sweeps > maxSweeps {
			return fmt.Errorf("linalg: tridiagonal QL iteration after %d sweeps: %w", maxSweeps, ErrNotConverged)
		}
		// Shift: the eigenvalue of the leading 2×2 block nearer diag[l].
		g := (diag[l+1] - diag[l]) / (2 * off[l])
		r := math.Hypot(g, 1)
		g = diag[m] - diag[l] + off[l]/(g+math.Copysign(r, g))
		s, c, p := 1.0, 1.0, 0.0
		at := len(b.c)
		i := m - 1
		for ; i >= l; i-- {
			f := s * off[i]
			h := c * off[i]
			r = qlHypot(f, g)
			off[i+1] = r
			if r == 0 {
				// Underflow: deflate at i+1 and start again.
				diag[i+1] -= p
				off[m] = 0
				break
			}
			s, c = f/r, g/r
			g = diag[i+1] - p
			r = (diag[i]-g)*s + 2*c*h
			p = s * r
			diag[i+1] = g + p
			g = c*r - h
			b.c = append(b.c, c)
			b.s = append(b.s, s)
		}
		if cnt := len(b.c) - at; cnt > 0 {
			b.sweeps = append(b.sweeps, rotSweep{top: m, n: cnt, at: at})
		}
		if len(b.c) >= rotBatchMax {
			b = ap.next(b)
		}
		if r == 0 && i >= l {
			continue
		}
		diag[l] -= p
		off[l] = g
		off[m] = 0
	}
	ap.next(b)
	return nil
}
