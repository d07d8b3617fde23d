package optim

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/internal/stattest"
	"github.com/dpopt/dpopt/linalg"
)

func TestNewtonNonPrivateReachesMinimum(t *testing.T) {
	data := fnProblem(t, 200, 4, 3, 1)
	const wd = 2.0
	for _, alpha := range []float64{1, 0.5, 3} {
		t.Run("", func(t *testing.T) {
			// Clipping inactive (rows have norm < 1), λ tiny: Newton's method on
			// the objective, which converges quadratically.
			s := Newton{Privacy: nonPrivate, ClipNorm: 1, NegWeight: alpha, Ridge: 1e-9, WeightDecay: wd, Steps: 30}
			res, err := s.Solve(context.Background(), data, nil, dp.NewSeededSource(1))
			require.NoError(t, err)
			want := fnMinimize(t, fnObjective{data: data, alpha: alpha, weightDecay: wd})
			fnCheckMinimum(t, res.Model.W, want)
			if res.Model.Bias != nil {
				t.Errorf("Bias = %v, want nil", res.Model.Bias)
			}
		})
	}
}

func TestNewtonNoiseDraws(t *testing.T) {
	data := fnProblem(t, 50, 6, 4, 2)
	d, k := 6, 4
	for _, steps := range []int{1, 2, 5} {
		src := &fnCounter{Source: dp.NewSeededSource(3)}
		s := Newton{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1, Steps: steps}
		res, err := s.Solve(context.Background(), data, nil, src)
		require.NoError(t, err)
		// Per step, K·d draws for the gradients and d(d+1)/2 for each of the K
		// Hessians: a solver that shared noise between classes or steps draws fewer.
		if want := steps * (k*d*(d+1)/2 + k*d); src.draws != want {
			t.Errorf("Steps = %d: %d normal draws, want %d", steps, src.draws, want)
		}
		require.Len(t, res.Report.Releases, 2)
		g, h := res.Report.Releases[0], res.Report.Releases[1]
		if g.Label != "gradients" || g.Count != steps || math.Abs(g.Sensitivity-2) > 1e-12 ||
			h.Label != "hessians" || h.Count != steps || math.Abs(h.Sensitivity-0.5) > 1e-12 {
			t.Errorf("releases = %+v; want sensitivities √K·C = 2 and √K·C²/4 = 0.5", res.Report.Releases)
		}
	}
}

// TestNewtonHessianNoise checks the noise on the K Hessians of the first step,
// where W = 0 and the exact Hessians are known in closed form,
// H_l = (G_l + α·Σ_{m≠l} G_m)/4 with G_m the Gram of class m: each released
// Ĥ_l − H_l must be symmetric N(0, σ²) on the diagonal and N(0, σ²/2) off it,
// with σ = z·√K·max(1, α)·C²/4 and z = √(2T)/μ from the GDP μ of (ε, δ); and
// the K noises must be independent (pairwise correlation), not shared.
// Checks: CheckNormal (3) and K(K−1)/2 = 3 correlations, each at α = 1e-6: a
// correct solver fails with probability ≤ 6e-6 per seed. The power check (KS
// rejects 1.2σ at n = 21 780) fails falsely with negligible probability.
func TestNewtonHessianNoise(t *testing.T) {
	const d, k, steps, eps, delta, clip, negWeight, alpha = 120, 3, 2, 3.0, 1e-5, 0.8, 0.5, 1e-6
	data := fnProblem(t, 300, d, k, 3)
	released := make([]*mat.SymDense, k)
	s := Newton{Privacy: Privacy{Epsilon: eps, Delta: delta}, ClipNorm: clip, NegWeight: negWeight, Steps: steps}
	s.hessHook = func(step, class int, h *mat.SymDense) {
		if step == 0 {
			released[class] = mat.NewSymDense(d, nil)
			released[class].CopySym(h)
		}
	}
	res, err := s.Solve(context.Background(), data, nil, stattest.Source(t))
	require.NoError(t, err)

	mu, err := accountant.GaussianMu(eps, delta)
	require.NoError(t, err)
	sigma := math.Sqrt(2*steps) / mu * math.Sqrt(k) * clip * clip / 4
	if got := res.Report.Releases[1].Sigma; math.Abs(got-sigma) > 1e-6*sigma {
		t.Errorf("reported Hessian σ = %.8g, want %.8g", got, sigma)
	}

	x, err := clipped(data, clip, 0)
	require.NoError(t, err)
	grams := make([]*mat.SymDense, k)
	for l := range k {
		var rows []float32
		for i, y := range data.Labels {
			if y == l {
				rows = append(rows, x.Row(i)...)
			}
		}
		grams[l], err = linalg.Gram(&linalg.Matrix32{Rows: len(rows) / d, Cols: d, Data: rows}, 1)
		require.NoError(t, err)
	}
	var all []float64
	noise := make([][]float64, k)
	for l := range k {
		require.NotNil(t, released[l], "class %d: no Hessian released", l)
		h := mat.NewSymDense(d, nil)
		for m := range k {
			w := negWeight / 4
			if m == l {
				w = 0.25
			}
			h.AddSym(h, scaledSym(w, grams[m]))
		}
		for i := range d {
			noise[l] = append(noise[l], (released[l].At(i, i)-h.At(i, i))/sigma)
			for j := i + 1; j < d; j++ {
				noise[l] = append(noise[l], (released[l].At(i, j)-h.At(i, j))/(sigma/math.Sqrt2))
			}
		}
		all = append(all, noise[l]...)
	}
	stattest.CheckNormal(t, "Hessian noise / σ", all, 1, alpha, 0)
	if !stattest.RejectsSigma(all, 1.2, alpha, 0) {
		t.Error("no power: KS does not reject 1.2σ")
	}
	for a := range k {
		for b := a + 1; b < k; b++ {
			if r, tol := stattest.Corr(noise[a], noise[b]), stattest.CorrTol(len(noise[a]), alpha); math.Abs(r) > tol {
				t.Errorf("noise of classes %d and %d: correlation %.4f, want |r| ≤ %.4f", a, b, r, tol)
			}
		}
	}
}

func TestNewtonBudget(t *testing.T) {
	data := fnProblem(t, 60, 5, 3, 4)
	const steps = 4
	l := fnExactLedger(t, 0.5, 1e-5) // the solver targets ε = 1
	src := &fnCounter{Source: dp.NewSeededSource(5)}
	s := Newton{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1, Steps: steps}
	res, err := s.Solve(context.Background(), data, l, src)
	if !errors.Is(err, accountant.ErrBudgetExceeded) || res != nil {
		t.Fatalf("Solve = %v, %v; want nil, ErrBudgetExceeded", res, err)
	}
	// The whole plan is checked before the first release: a run the budget
	// cannot afford records nothing and draws no noise.
	if entries := l.Entries(); len(entries) != 0 || src.draws != 0 {
		t.Fatalf("%d releases recorded and %d normals drawn by a refused run, want 0 and 0", len(entries), src.draws)
	}
}

func TestNewtonCancel(t *testing.T) {
	data := fnProblem(t, 60, 5, 3, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := fnExactLedger(t, 1, 1e-5)
	s := Newton{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1, Steps: 3}
	s.hessHook = func(step, class int, _ *mat.SymDense) {
		if step == 0 && class == 0 {
			cancel()
		}
	}
	res, err := s.Solve(ctx, data, l, dp.NewSeededSource(1))
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("Solve = %v, %v; want nil, context.Canceled", res, err)
	}
	if e := l.Entries(); len(e) != 2 || e[0].Label != "gradients" || e[1].Label != "hessians" {
		t.Errorf("recorded %v, want the first step's two releases", e)
	}
}

func TestNewtonTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, d, k  int
		maxBytes int64
	}{
		// Default 4 GiB: 4·d²·8 bytes of d×d matrices alone is 12.8 GB at d = 20 000.
		{"default limit", 1, 20000, 2, 0},
		{"set limit", 100, 10, 3, 1 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := linalg.NewMatrix32(tc.n, tc.d)
			data := &Data{X: x, Labels: make([]int, tc.n), Classes: tc.k}
			l := fnExactLedger(t, 1, 1e-5)
			s := Newton{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1, MaxBytes: tc.maxBytes}
			res, err := s.Solve(context.Background(), data, l, dp.NewSeededSource(1))
			if !errors.Is(err, ErrTooLarge) || res != nil {
				t.Fatalf("Solve = %v, %v; want nil, ErrTooLarge", res, err)
			}
			if n := len(l.Entries()); n != 0 {
				t.Errorf("%d releases recorded before refusing, want 0", n)
			}
		})
	}
}

func TestNewtonBadInput(t *testing.T) {
	data := fnProblem(t, 20, 3, 2, 7)
	ok := Newton{Privacy: Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 1}
	for _, tc := range []struct {
		name  string
		edit  func(*Newton)
		param string
	}{
		{"ClipNorm zero", func(s *Newton) { s.ClipNorm = 0 }, "ClipNorm"},
		{"ClipNorm Inf", func(s *Newton) { s.ClipNorm = math.Inf(1) }, "ClipNorm"},
		{"Steps negative", func(s *Newton) { s.Steps = -2 }, "Steps"},
		{"LearningRate NaN", func(s *Newton) { s.LearningRate = math.NaN() }, "LearningRate"},
		{"Ridge negative", func(s *Newton) { s.Ridge = -1 }, "Ridge"},
		{"RidgeScale Inf", func(s *Newton) { s.RidgeScale = math.Inf(1) }, "RidgeScale"},
		{"NegWeight negative", func(s *Newton) { s.NegWeight = -0.5 }, "NegWeight"},
		{"MaxBytes negative", func(s *Newton) { s.MaxBytes = -1 }, "MaxBytes"},
		{"Epsilon NaN", func(s *Newton) { s.Epsilon = math.NaN() }, "Epsilon"},
		{"Split ratio", func(s *Newton) { s.Split = []float64{1, 0} }, "Split"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.edit(&s)
			res, err := s.Solve(context.Background(), data, nil, dp.NewSeededSource(1))
			var pe *accountant.ParamError
			if res != nil || !errors.As(err, &pe) || pe.Param != tc.param {
				t.Fatalf("Solve = %v, %v; want a ParamError for %s", res, err, tc.param)
			}
			if _, err := s.Plan(100); err == nil {
				t.Error("Plan accepts it")
			}
		})
	}
	if _, err := ok.Solve(context.Background(), data, nil, nil); err == nil {
		t.Error("nil source accepted")
	}
	if _, err := ok.Solve(context.Background(), &Data{X: data.X, Labels: data.Labels[:3], Classes: 2}, nil, dp.NewSeededSource(1)); !errors.Is(err, linalg.ErrShape) {
		t.Errorf("short labels: %v, want ErrShape", err)
	}
}

// TestNewtonDigits measures test accuracy on digits (see TestFCDigits), δ = 1e-5,
// ClipNorm = 1, all other fields default (one step), mean of seeds 1–3.
// Measured (%):
//
//	ε        0.1   0.3   1     3     8     ∞
//	Newton   15.0  22.0  48.7  78.7  86.7  93.1
//
// DP-Newton's K Hessians cost √K times the Gram's sensitivity (at W = 0 with
// α = 1 they are all G/4), so it trails DP-LS (81.7 at ε = 1, 91.2 at ε = 8)
// and FC, as the paper finds. The floors are about 3 points below.
func TestNewtonDigits(t *testing.T) {
	if testing.Short() {
		t.Skip("digits accuracy: skipped in short mode")
	}
	train, test := fnDigits(t)
	for _, tc := range []struct {
		eps, floor float64
	}{
		{1, 0.45}, {8, 0.83}, {math.Inf(1), 0.90},
	} {
		s := &Newton{Privacy: Privacy{Epsilon: tc.eps, Delta: 1e-5}, ClipNorm: 1}
		acc := fnMeanAccuracy(t, s, train, test, 3)
		t.Logf("ε = %g: accuracy %.3f", tc.eps, acc)
		if acc < tc.floor {
			t.Errorf("ε = %g: mean accuracy %.3f, want ≥ %.2f", tc.eps, acc, tc.floor)
		}
	}
}
