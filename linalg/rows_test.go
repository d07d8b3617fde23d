package linalg

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// rowsRecorder is a RowsFunc that records the scores and norms it is given
// and returns r_jl = tanh(s_jl)·(1 + j mod 3), a weight that depends on both
// the score and the position j in the selection.
type rowsRecorder struct {
	k      int
	scores *mat.Dense // m×K
	norms  []float64
}

func (r *rowsRecorder) f(first int, s []float64, stride int, norms []float64) error {
	for i, xn := range norms {
		j := first + i
		r.norms[j] = xn
		for l := range r.k {
			v := s[i*stride+l]
			r.scores.Set(j, l, v)
			s[i*stride+l] = math.Tanh(v) * float64(1+j%3)
		}
	}
	return nil
}

// rowsProblem returns an n×d X of N(0, 1) entries and a K×d W of N(0,
// wScale²) entries, drawn from rnd in that order, row by row.
func rowsProblem(rnd *rand.Rand, n, d, k int, wScale float64) (*Matrix32, *mat.Dense) {
	x := NewMatrix32(n, d)
	for i := range x.Data {
		x.Data[i] = float32(rnd.NormFloat64())
	}
	w := mat.NewDense(k, d, nil)
	for l := range k {
		for j := range d {
			w.Set(l, j, wScale*rnd.NormFloat64())
		}
	}
	return x, w
}

// naiveGrad returns entry (l, f) of the gradient for the recorded scores,
// Σ_j tanh(s_jl)·(1 + j mod 3)·x_jf over the gathered rows xg in order, and
// Σ_j of the terms' magnitudes, for the tolerance.
func (r *rowsRecorder) naiveGrad(xg *Matrix32, l, f int) (sum, abs float64) {
	for j := range xg.Rows {
		v := math.Tanh(r.scores.At(j, l)) * float64(1+j%3) * float64(xg.Row(j)[f])
		sum += v
		abs += math.Abs(v)
	}
	return sum, abs
}

func rowsGather(x *Matrix32, rows []int) *Matrix32 {
	if rows == nil {
		return x
	}
	g := NewMatrix32(len(rows), x.Cols)
	for j, i := range rows {
		copy(g.Row(j), x.Row(i))
	}
	return g
}

// TestScoreGradRows checks the scores and norms handed to the callback
// against MulXWtNorms on the gathered rows (bit for bit: same kernel, same
// order), and the gradient against a naive float64 loop, with both kernels,
// for K below and above one 12-class panel, d not a multiple of 4 or of
// 256, selections ending inside a tile, a block and a segment, repeated
// rows and the nil selection.
func TestScoreGradRows(t *testing.T) {
	cases := []struct {
		n, d, k int
		rows    []int // nil: draw m random rows
		m       int
	}{
		{n: 40, d: 7, k: 2, m: 1},
		{n: 300, d: 301, k: 10, m: 203},
		{n: 100, d: 16, k: 25, m: 65},
		{n: 70, d: 530, k: 13, rows: nil, m: -1}, // nil selection: all rows
	}
	for _, asm := range []bool{false, true} {
		if asm && !gemmHasAsm {
			continue
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("asm=%v/n=%d/d=%d/K=%d/m=%d", asm, tc.n, tc.d, tc.k, tc.m), func(t *testing.T) {
				old := gemmUseAsm
				gemmUseAsm = asm
				t.Cleanup(func() { gemmUseAsm = old })
				rnd := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.d)))
				x, w := rowsProblem(rnd, tc.n, tc.d, tc.k, 0.1)
				rows := tc.rows
				m := tc.n
				if tc.m >= 0 {
					m = tc.m
					rows = make([]int, m)
					for j := range rows {
						rows[j] = rnd.IntN(tc.n)
					}
				}
				rec := &rowsRecorder{k: tc.k, scores: mat.NewDense(m, tc.k, nil), norms: make([]float64, m)}
				var g mat.Dense
				var ws RowsWork
				if err := ScoreGradRows(&g, x, rows, w, rec.f, &ws, 1); err != nil {
					t.Fatal(err)
				}
				xg := rowsGather(x, rows)
				if !gramUseBLAS() {
					want := mat.NewDense(m, tc.k, nil)
					wantN := make([]float64, m)
					if err := MulXWtNorms(want, wantN, xg, w, 2); err != nil {
						t.Fatal(err)
					}
					if !mat.Equal(rec.scores, want) {
						t.Error("scores differ from MulXWtNorms'")
					}
					for j := range wantN {
						if rec.norms[j] != wantN[j] {
							t.Fatalf("norm %d: got %v, want %v", j, rec.norms[j], wantN[j])
						}
					}
				}
				// Naive gradient from the recorded scores; each entry is a
				// sum of m products, so its rounding is ≲ m·2⁻⁵³·Σ|terms|:
				// the tolerance is 4× that.
				for l := range tc.k {
					for f := range tc.d {
						sum, abs := rec.naiveGrad(xg, l, f)
						if got := g.At(l, f); math.Abs(got-sum) > 4*float64(m)*0x1p-53*abs {
							t.Fatalf("gradient (%d, %d): got %v, want %v", l, f, got, sum)
						}
					}
				}
				// Any workers count: the same bits, scratch reused.
				for _, workers := range []int{2, 3, 0} {
					var g2 mat.Dense
					if err := ScoreGradRows(&g2, x, rows, w, rec.f, &ws, workers); err != nil {
						t.Fatal(err)
					}
					if !mat.Equal(&g, &g2) {
						t.Errorf("workers=%d: gradient differs bitwise from workers=1", workers)
					}
				}
			})
		}
	}
}

func TestScoreGradRowsErrors(t *testing.T) {
	const n, d, k = 10, 5, 3
	x := NewMatrix32(n, d)
	for i := range x.Data {
		x.Data[i] = float32(i%7) - 3
	}
	w := mat.NewDense(k, d, nil)
	ok := func(int, []float64, int, []float64) error { return nil }
	errF := errors.New("callback failed")
	nan := NewMatrix32(n, d)
	nan.Data[3*d+1] = float32(math.NaN())
	wNaN := mat.NewDense(k, d, nil)
	wNaN.Set(1, 1, math.Inf(1))
	tests := []struct {
		name    string
		dst     *mat.Dense
		x       *Matrix32
		rows    []int
		w       *mat.Dense
		f       RowsFunc
		workers int
		want    error
	}{
		{"empty X", &mat.Dense{}, &Matrix32{Cols: d}, nil, w, ok, 1, ErrEmpty},
		{"nil W", &mat.Dense{}, x, nil, nil, ok, 1, ErrEmpty},
		{"W columns", &mat.Dense{}, x, nil, mat.NewDense(k, d+1, nil), ok, 1, ErrShape},
		{"dst shape", mat.NewDense(k, d+1, nil), x, nil, w, ok, 1, ErrShape},
		{"dst is W", w, x, nil, w, ok, 1, ErrShape},
		{"row -1", &mat.Dense{}, x, []int{0, -1}, w, ok, 1, ErrShape},
		{"row n", &mat.Dense{}, x, []int{n}, w, ok, 1, ErrShape},
		{"empty selection", &mat.Dense{}, x, []int{}, w, ok, 1, ErrEmpty},
		{"nil f", &mat.Dense{}, x, nil, w, nil, 1, ErrEmpty},
		{"negative workers", &mat.Dense{}, x, nil, w, ok, -1, ErrParam},
		{"NaN in a selected row", &mat.Dense{}, nan, []int{0, 3}, w, ok, 1, ErrNonFinite},
		{"Inf W", &mat.Dense{}, x, nil, wNaN, ok, 1, ErrNonFinite},
		{"NaN residual", &mat.Dense{}, x, nil, w, func(_ int, s []float64, _ int, _ []float64) error {
			s[1] = math.NaN()
			return nil
		}, 2, ErrNonFinite},
		{"callback error", &mat.Dense{}, x, nil, w, func(int, []float64, int, []float64) error { return errF }, 2, errF},
	}
	for _, tc := range tests {
		for _, p := range []Precision{Float64, Float32} {
			t.Run(tc.name+"/"+p.String(), func(t *testing.T) {
				err := ScoreGradRowsPrecision(tc.dst, tc.x, tc.rows, tc.w, tc.f, nil, tc.workers, p)
				if !errors.Is(err, tc.want) {
					t.Errorf("got %v, want an error wrapping %v", err, tc.want)
				}
			})
		}
	}
	// A NaN in a row that is not selected is never read.
	if err := ScoreGradRows(&mat.Dense{}, nan, []int{0, 1, 2, 4}, w, ok, nil, 1); err != nil {
		t.Errorf("NaN in an unselected row: %v", err)
	}
}

// TestScoreGradRowsFloat32 checks the Float32 path: the scores handed to the
// callback equal MulXWtPrecision's with Float32 bit for bit (same kernel,
// same chunks), the norms equal MulXWtNorms', the gradient is within the
// documented bound of a naive float64 loop, and the result is the same bits
// for every workers count and for both kernels.
func TestScoreGradRowsFloat32(t *testing.T) {
	cases := []struct {
		n, d, k, m int // m < 0: the nil selection
	}{
		{40, 7, 2, 1},
		{300, 301, 10, 203},
		{100, 16, 25, 65},
		{70, 530, 13, -1},
		{500, 784, 10, 256},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("n=%d/d=%d/K=%d/m=%d", tc.n, tc.d, tc.k, tc.m), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.d)))
			x, w := rowsProblem(rnd, tc.n, tc.d, tc.k, 0.1)
			var rows []int
			m := tc.n
			if tc.m >= 0 {
				m = tc.m
				rows = make([]int, m)
				for j := range rows {
					rows[j] = rnd.IntN(tc.n)
				}
			}
			xg := rowsGather(x, rows)
			var ref *mat.Dense // the first kernel's gradient
			for _, asm := range []bool{false, true} {
				if asm && !gemmHasAsm {
					continue
				}
				old := gemmUseAsm
				gemmUseAsm = asm
				rec := &rowsRecorder{k: tc.k, scores: mat.NewDense(m, tc.k, nil), norms: make([]float64, m)}
				var g mat.Dense
				var ws RowsWork
				err := ScoreGradRowsPrecision(&g, x, rows, w, rec.f, &ws, 1, Float32)
				gemmUseAsm = old
				if err != nil {
					t.Fatal(err)
				}
				if !gemmUseBLAS32() {
					gemmUseAsm = asm
					want := mat.NewDense(m, tc.k, nil)
					wantN := make([]float64, m)
					err := MulXWtPrecision(want, wantN, xg, w, 2, Float32)
					gemmUseAsm = old
					if err != nil {
						t.Fatal(err)
					}
					if !mat.Equal(rec.scores, want) {
						t.Errorf("asm=%v: scores differ from MulXWtPrecision's with Float32", asm)
					}
					for j := range wantN {
						if rec.norms[j] != wantN[j] {
							t.Fatalf("asm=%v: norm %d: got %v, want %v", asm, j, rec.norms[j], wantN[j])
						}
					}
				}
				// Naive float64 gradient from the recorded scores. The float32
				// blocks of at most 32 rows round each entry by at most
				// (32+2)·2⁻²⁴ of Σ|terms| (R rounded, products and sums
				// rounded), the float64 sums add m·2⁻⁵³ of it: the tolerance
				// is 36·2⁻²⁴ of Σ|terms|.
				for l := range tc.k {
					for f := range tc.d {
						sum, abs := rec.naiveGrad(xg, l, f)
						if got := g.At(l, f); math.Abs(got-sum) > 36*0x1p-24*abs {
							t.Fatalf("asm=%v: gradient (%d, %d): got %v, want %v (Σ|terms| = %v)", asm, l, f, got, sum, abs)
						}
					}
				}
				if ref == nil {
					ref = mat.DenseCopyOf(&g)
				} else if !mat.Equal(ref, &g) {
					t.Error("the assembly and pure-Go kernels give different gradients")
				}
				gemmUseAsm = asm
				for _, workers := range []int{2, 3, 0} {
					var g2 mat.Dense
					if err := ScoreGradRowsPrecision(&g2, x, rows, w, rec.f, &ws, workers, Float32); err != nil {
						t.Fatal(err)
					}
					if !mat.Equal(&g, &g2) {
						t.Errorf("asm=%v, workers=%d: gradient differs bitwise from workers=1", asm, workers)
					}
				}
				gemmUseAsm = old
			}
		})
	}
}

// TestScoreGradRowsFloat32Overflow: a W, score or residual weight that
// float32 cannot hold sends the call to Float64, whose result it then
// returns bit for bit.
func TestScoreGradRowsFloat32Overflow(t *testing.T) {
	const n, d, k = 80, 40, 3
	rnd := rand.New(rand.NewPCG(5, 6))
	x, w := rowsProblem(rnd, n, d, k, 1)
	rows := []int{3, 70, 5, 5, 41, 0, 79, 12, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49,
		50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60}
	bigX := NewMatrix32(n, d)
	copy(bigX.Data, x.Data)
	bigX.Data[41*d+7] = 5e29 // ×w(0, 7) = 1e10 overflows float32 (3.4e38), not float64
	bigW := mat.DenseCopyOf(w)
	bigW.Set(0, 7, 1e10)
	hugeW := mat.DenseCopyOf(w)
	hugeW.Set(1, 2, 1e39) // does not fit float32
	tanh := func(_ int, s []float64, stride int, norms []float64) error {
		for i := range norms {
			for l := range k {
				s[i*stride+l] = math.Tanh(s[i*stride+l])
			}
		}
		return nil
	}
	hugeR := func(first int, s []float64, stride int, norms []float64) error {
		for i := range norms {
			for l := range k {
				s[i*stride+l] = math.Tanh(s[i*stride+l])
			}
			if first+i == 30 {
				s[i*stride+1] = 1e39
			}
		}
		return nil
	}
	tests := []struct {
		name string
		x    *Matrix32
		w    *mat.Dense
		f    RowsFunc
	}{
		{"W beyond float32", x, hugeW, tanh},
		{"score overflows float32", bigX, bigW, tanh},
		{"residual weight beyond float32", x, w, hugeR},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want, got mat.Dense
			if err := ScoreGradRowsPrecision(&want, tc.x, rows, tc.w, tc.f, nil, 1, Float64); err != nil {
				t.Fatal(err)
			}
			for _, workers := range []int{1, 2} {
				got.Reset()
				if err := ScoreGradRowsPrecision(&got, tc.x, rows, tc.w, tc.f, nil, workers, Float32); err != nil {
					t.Fatal(err)
				}
				if !mat.Equal(&want, &got) {
					t.Errorf("workers=%d: Float32 result differs from Float64's", workers)
				}
			}
		})
	}
	if err := ScoreGradRowsPrecision(&mat.Dense{}, x, rows, w, tanh, nil, 1, Precision(7)); !errors.Is(err, ErrParam) {
		t.Errorf("unknown precision: got %v, want an error wrapping ErrParam", err)
	}
}

// BenchmarkScoreGradRows times one DP-SGD minibatch step's fused products
// (256 rows) at the MNIST (d = 784, K = 10) and CIFAR-100 (d = 768, K = 100)
// shapes, in each precision, on a data set that stays in cache (n = 128) and
// on 60 000 rows, whose randomly selected rows come from memory.
func BenchmarkScoreGradRows(b *testing.B) {
	const m = 256
	for _, s := range []struct{ n, d, k int }{{128, 784, 10}, {60000, 784, 10}, {128, 768, 100}, {60000, 768, 100}} {
		n, d, k := s.n, s.d, s.k
		rnd := rand.New(rand.NewPCG(1, 2))
		x := NewMatrix32(n, d)
		for i := range x.Data {
			x.Data[i] = float32(rnd.Float64() - 0.5)
		}
		w := mat.NewDense(k, d, nil)
		for l := range k {
			for j := range d {
				w.Set(l, j, 0.01*rnd.NormFloat64())
			}
		}
		sels := make([][]int, 64)
		for s := range sels {
			sels[s] = make([]int, m)
			for j := range m {
				sels[s][j] = rnd.IntN(n)
			}
		}
		f := func(_ int, s []float64, stride int, norms []float64) error {
			for i := range norms {
				for l := range k {
					s[i*stride+l] = 0.1 * s[i*stride+l]
				}
			}
			return nil
		}
		for _, p := range []Precision{Float64, Float32} {
			for _, workers := range []int{1, 2} {
				b.Run(fmt.Sprintf("n=%d/d=%d/K=%d/m=%d/prec=%v/workers=%d", n, d, k, m, p, workers), func(b *testing.B) {
					var g mat.Dense
					var ws RowsWork
					i := 0
					for b.Loop() {
						if err := ScoreGradRowsPrecision(&g, x, sels[i%len(sels)], w, f, &ws, workers, p); err != nil {
							b.Fatal(err)
						}
						i++
					}
					b.ReportMetric(float64(4*m*d*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// TestScoreGradRowsReuseShapes: scratch kept across calls of different K
// and d gives what fresh scratch gives, in both precisions.
func TestScoreGradRowsReuseShapes(t *testing.T) {
	rnd := rand.New(rand.NewPCG(8, 9))
	f := func(first int, s []float64, stride int, norms []float64) error {
		for i := range norms {
			for l := range stride {
				s[i*stride+l] = math.Tanh(s[i*stride+l])
			}
		}
		return nil
	}
	for _, p := range []Precision{Float64, Float32} {
		var ws RowsWork
		for _, sh := range [][2]int{{17, 40}, {10, 40}, {5, 40}, {10, 40}, {3, 33}, {17, 40}} {
			k, d := sh[0], sh[1]
			x, w := rowsProblem(rnd, 300, d, k, 1)
			rows := []int{5, 17, 299, 0, 42, 42, 7}
			var got, want mat.Dense
			if err := ScoreGradRowsPrecision(&got, x, rows, w, f, &ws, 1, p); err != nil {
				t.Fatal(err)
			}
			if err := ScoreGradRowsPrecision(&want, x, rows, w, f, nil, 1, p); err != nil {
				t.Fatal(err)
			}
			if !mat.Equal(&got, &want) {
				t.Errorf("%v, K = %d, d = %d: reused scratch gives another gradient", p, k, d)
			}
		}
	}
}
