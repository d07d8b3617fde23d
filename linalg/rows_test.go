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
				x := NewMatrix32(tc.n, tc.d)
				for i := range x.Data {
					x.Data[i] = float32(rnd.NormFloat64())
				}
				w := mat.NewDense(tc.k, tc.d, nil)
				for l := range tc.k {
					for j := range tc.d {
						w.Set(l, j, 0.1*rnd.NormFloat64())
					}
				}
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
						var sum, abs float64
						for j := range m {
							v := math.Tanh(rec.scores.At(j, l)) * float64(1+j%3) * float64(xg.Row(j)[f])
							sum += v
							abs += math.Abs(v)
						}
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
		t.Run(tc.name, func(t *testing.T) {
			err := ScoreGradRows(tc.dst, tc.x, tc.rows, tc.w, tc.f, nil, tc.workers)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want an error wrapping %v", err, tc.want)
			}
		})
	}
	// A NaN in a row that is not selected is never read.
	if err := ScoreGradRows(&mat.Dense{}, nan, []int{0, 1, 2, 4}, w, ok, nil, 1); err != nil {
		t.Errorf("NaN in an unselected row: %v", err)
	}
}
