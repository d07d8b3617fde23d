package optim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// Helpers of this file carry the prefix "qz".

// qzSameBits fails unless a and b are equal to the bit.
func qzSameBits(t *testing.T, a, b *mat.Dense, what string) {
	t.Helper()
	ra, rb := a.RawMatrix(), b.RawMatrix()
	require.Equal(t, ra.Rows, rb.Rows)
	require.Equal(t, ra.Cols, rb.Cols)
	for i := range ra.Rows {
		for j := range ra.Cols {
			if x, y := ra.Data[i*ra.Stride+j], rb.Data[i*rb.Stride+j]; math.Float64bits(x) != math.Float64bits(y) {
				t.Fatalf("%s: entry (%d, %d) = %v, want %v bit for bit", what, i, j, x, y)
			}
		}
	}
}

// qzPermuted returns d's rows in a random order.
func qzPermuted(d *Data, seed uint64) *Data {
	perm := rand.New(rand.NewPCG(seed, 1)).Perm(d.X.Rows)
	x := linalg.NewMatrix32(d.X.Rows, d.X.Cols)
	y := make([]int, len(d.Labels))
	for i, p := range perm {
		copy(x.Row(i), d.X.Row(p))
		y[i] = d.Labels[p]
	}
	return &Data{X: x, Labels: y, Classes: d.Classes}
}

// With Quantize, DP-LS's model for a given seed is the same to the bit for
// the same rows in any order, block size and Workers; DP-FC's Gram is, so
// its model agrees to rounding of the gradient sums.
func TestQuantizeReproducible(t *testing.T) {
	train, _ := fnDigits(t)
	shuffled := qzPermuted(train, 3)
	priv := Privacy{Epsilon: 1, Delta: 1e-5}
	solveLS := func(s *LS, d *Data, block int) *mat.Dense {
		t.Helper()
		var res *Result
		var err error
		if block < 0 {
			res, err = s.Solve(context.Background(), d, nil, dp.NewSeededSource(7))
		} else {
			opens, closes := 0, 0
			sd := stData(d, block, nil, &opens, &closes)
			sd.N = d.X.Rows // a quantised pass needs n up front
			res, err = s.SolveStream(context.Background(), sd, nil, dp.NewSeededSource(7))
		}
		require.NoError(t, err)
		return res.Model.W
	}
	ref := solveLS(&LS{Privacy: priv, ClipNorm: 1, Quantize: 16}, train, -1)
	t.Run("LS/SolveStream/unknown N", func(t *testing.T) {
		opens, closes := 0, 0
		s := &LS{Privacy: priv, ClipNorm: 1, Quantize: 16}
		_, err := s.SolveStream(context.Background(), stData(train, 0, nil, &opens, &closes), nil, dp.NewSeededSource(7))
		var pe *accountant.ParamError
		require.True(t, errors.As(err, &pe) && pe.Param == "Quantize", "quantised stream of unknown length: got %v", err)
	})
	for _, c := range []struct {
		name    string
		d       *Data
		block   int
		workers int
	}{
		{"Solve/shuffled", shuffled, -1, 0},
		{"Solve/Workers=1", train, -1, 1},
		{"SolveStream/BlockRows=0", train, 0, 0},
		{"SolveStream/BlockRows=97", train, 97, 3},
		{"SolveStream/BlockRows=500/shuffled", shuffled, 500, 0},
	} {
		t.Run("LS/"+c.name, func(t *testing.T) {
			got := solveLS(&LS{Privacy: priv, ClipNorm: 1, Quantize: 16, Workers: c.workers}, c.d, c.block)
			qzSameBits(t, got, ref, "DP-LS model")
		})
	}
	// Without quantisation the block size shows in the last bits.
	a := solveLS(&LS{Privacy: priv, ClipNorm: 1}, train, -1)
	b := solveLS(&LS{Privacy: priv, ClipNorm: 1}, shuffled, -1)
	require.False(t, mat.Equal(a, b), "unquantised statistics did not depend on the row order: the test shows nothing")

	// Float64: quantisation makes the Gram exact, not the gradient sums,
	// which float32 blocks would make depend on the row order at ~1e-7.
	fc := &FC{Privacy: priv, ClipNorm: 1, GradClipNorm: 1, Steps: 3, Quantize: 16, Float64: true}
	res, err := fc.Solve(context.Background(), train, nil, dp.NewSeededSource(7))
	require.NoError(t, err)
	opens, closes := 0, 0
	fsd := stData(shuffled, 211, nil, &opens, &closes)
	fsd.N = shuffled.X.Rows
	str, err := fc.SolveStream(context.Background(), fsd, nil, dp.NewSeededSource(7))
	require.NoError(t, err)
	// Tolerance: the gradient sums are added in another order (relative
	// rounding ~1e-15 per step), amplified by the preconditioned steps.
	require.True(t, mat.EqualApprox(res.Model.W, str.Model.W, 1e-9), "DP-FC models differ beyond 1e-9")
}

// The quantised rows change the statistics by less than q per entry: the
// DP-LS model without noise moves little, and no accuracy is lost on digits.
//
// Measured (mean test accuracy over seeds 1–3, unquantised / 16 / 8 bits,
// with the defaults of commit 27a7f40): DP-LS ε = 1: 81.07 / 81.07 / 81.18 %,
// ε = 8: 90.79 % for all three, ε = ∞: 93.13 % for all; per-class ε = 1:
// 68.29 / 68.29 / 68.12 %, ε = 8: 88.78 / 88.78 / 88.72 %, ε = ∞: 94.30 % for
// all; DP-FC ε = 1: 86.21 % for all, ε = 8: 94.14 % for all, ε = ∞:
// 94.30 / 94.30 / 94.47 %. 16 bits never moved a test accuracy; the
// check allows 0.5 point at 16 bits.
func TestQuantizeAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("digits accuracy: skipped in short mode")
	}
	train, test := fnDigits(t)
	for _, c := range []struct {
		name string
		new  func(p Privacy, bits int) Solver
	}{
		{"LS", func(p Privacy, bits int) Solver { return &LS{Privacy: p, ClipNorm: 1, Quantize: bits} }},
		{"LS/PerClass", func(p Privacy, bits int) Solver {
			return &LS{Privacy: p, ClipNorm: 1, PerClass: true, Quantize: bits}
		}},
		{"FC", func(p Privacy, bits int) Solver {
			return &FC{Privacy: p, ClipNorm: 1, GradClipNorm: 1, Quantize: bits}
		}},
	} {
		for _, eps := range []float64{1, 8, math.Inf(1)} {
			t.Run(fmt.Sprintf("%s/ε=%g", c.name, eps), func(t *testing.T) {
				p := Privacy{Epsilon: eps, Delta: 1e-5}
				acc := map[int]float64{}
				for _, bits := range []int{0, 16, 8} {
					acc[bits] = fnMeanAccuracy(t, c.new(p, bits), train, test, 3)
				}
				t.Logf("accuracy: unquantised %.4f, 16 bits %.4f, 8 bits %.4f", acc[0], acc[16], acc[8])
				// 0.5 point is 3 of the 597 test digits.
				require.GreaterOrEqual(t, acc[16], acc[0]-0.005, "16-bit quantisation lost accuracy")
			})
		}
	}
}

func TestQuantizeParam(t *testing.T) {
	train, _ := fnDigits(t)
	for _, bits := range []int{-1, linalg.MaxQuantizeBits + 1} {
		for _, s := range []Solver{
			&LS{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1, Quantize: bits},
			&FC{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1, GradClipNorm: 1, Quantize: bits},
		} {
			_, err := s.Plan(100)
			var pe *accountant.ParamError
			require.True(t, errors.As(err, &pe) && pe.Param == "Quantize", "Quantize = %d: got %v", bits, err)
		}
	}
	// A b that n rows could push past the exactness limit is refused before
	// any row is read, whatever the data: 24 bits of C = 1 leave room for a
	// diagonal below 2⁵³·2⁻⁴⁸ = 32, which 1200 unit rows could exceed.
	s := &LS{Privacy: Privacy{Epsilon: math.Inf(1)}, ClipNorm: 1, Quantize: 24}
	_, err := s.Solve(context.Background(), train, nil, dp.NewSeededSource(1))
	var pe *accountant.ParamError
	require.True(t, errors.As(err, &pe) && pe.Param == "Quantize", "Quantize = 24 on 1200 rows: got %v", err)
	require.NotErrorIs(t, err, linalg.ErrInexact)
}
