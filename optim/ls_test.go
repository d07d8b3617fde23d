package optim_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

var rdp accountant.Accountant = accountant.RDP{}

// ridgeLS is DP-LS without noise, computed naively with gonum's mat from the
// definition, independently of the library's statistics and solvers: rows
// clipped in float64 to L2 norm clip, one-hot targets Y, and
//
//	global:    θ = (XᵀX + λI)⁻¹ XᵀY
//	per class: θ_l = (G_l + α·G + λI)⁻¹ b_l, G_l = Σ_{y=l} x̃x̃ᵀ, G = Σ_l G_l, b_l = Σ_{y=l} x̃.
//
// It returns W = θᵀ (K×d).
func ridgeLS(t *testing.T, d *optim.Data, clip, lambda float64, perClass bool, alpha float64) *mat.Dense {
	t.Helper()
	n, dim, k := d.X.Rows, d.X.Cols, d.Classes
	x := mat.NewDense(n, dim, nil)
	y := mat.NewDense(n, k, nil)
	for i := range n {
		row := make([]float64, dim)
		var s float64
		for j, v := range d.X.Row(i) {
			row[j] = float64(v)
			s += row[j] * row[j]
		}
		if s = math.Sqrt(s); s > clip {
			for j := range row {
				row[j] *= clip / s
			}
		}
		x.SetRow(i, row)
		y.Set(i, d.Labels[i], 1)
	}
	var g, b mat.Dense
	g.Mul(x.T(), x) // d×d
	b.Mul(x.T(), y) // d×K
	w := mat.NewDense(k, dim, nil)
	solve := func(a *mat.Dense, rhs mat.Matrix) *mat.Dense {
		for i := range dim {
			a.Set(i, i, a.At(i, i)+lambda)
		}
		var theta mat.Dense
		if err := theta.Solve(a, rhs); err != nil {
			t.Fatalf("closed form: %v", err)
		}
		return &theta
	}
	if !perClass {
		var a mat.Dense
		a.CloneFrom(&g)
		w.Copy(solve(&a, &b).T())
		return w
	}
	for l := range k {
		xl := mat.NewDense(n, dim, nil) // rows of class l, zeros elsewhere
		for i := range n {
			if d.Labels[i] == l {
				xl.SetRow(i, x.RawRowView(i))
			}
		}
		var a mat.Dense
		a.Mul(xl.T(), xl)
		var ag mat.Dense
		ag.Scale(alpha, &g)
		a.Add(&a, &ag)
		w.SetRow(l, mat.Col(nil, 0, solve(&a, b.ColView(l))))
	}
	return w
}

// relErr returns ‖got − want‖_F / ‖want‖_F.
func relErr(got, want mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(got, want)
	return mat.Norm(&d, 2) / mat.Norm(want, 2)
}

// exactLS returns an optimtest.Config.Exact hook comparing a non-private LS
// model with ridgeLS. lambda 0 means LS's default ridge without noise,
// 1e-3·n·C²/d. The tolerance, 1e-5 relative, covers the float32 rounding of
// the library's clipped rows (at most 2⁻²¹ relative per row, as dp.ClipRows
// shrinks a rounded row until its norm is at most C) times the condition
// number of the regularised Gram (below 10 on the suite's data); rows the
// library does not clip give agreement to about 1e-14 (TestLSClosedForm).
func exactLS(clip, lambda float64, perClass bool, alpha float64) func(*testing.T, *optim.Data, *optim.Result) {
	return func(t *testing.T, d *optim.Data, res *optim.Result) {
		t.Helper()
		if lambda == 0 {
			lambda = 1e-3 * float64(d.X.Rows) * clip * clip / float64(d.X.Cols)
		}
		want := ridgeLS(t, d, clip, lambda, perClass, alpha)
		if e := relErr(res.Model.W, want); e > 1e-5 {
			t.Errorf("non-private LS: relative error %.3g from the closed form, want ≤ 1e-5", e)
		}
	}
}

// exactClipData returns n rows of dimension 16 in k classes whose clipping is
// exact in float32 and float64 alike: each row is s·u with u a vector of
// entries ±1/4 (norm 1, random signs) and s drawn from {0.5, 0.75, 1, 2, 4, 8},
// so that with C = 1 the clipped rows are scaled by 1/2, 1/4 or 1/8 exactly.
// Half the rows or so are clipped.
func exactClipData(n, k int) *optim.Data {
	const dim = 16
	rng := rand.New(rand.NewPCG(3, 4))
	scales := []float32{0.5, 0.75, 1, 2, 4, 8}
	x := linalg.NewMatrix32(n, dim)
	labels := make([]int, n)
	for i := range n {
		labels[i] = i % k
		s := scales[rng.IntN(len(scales))]
		for j := range dim {
			v := s / 4
			if rng.IntN(4) == 0 || (j == labels[i] && rng.IntN(2) == 0) { // class-dependent signs
				v = -v
			}
			x.Row(i)[j] = v
		}
	}
	return &optim.Data{X: x, Labels: labels, Classes: k}
}

// TestLSClosedForm checks non-private DP-LS against the closed-form ridge
// solution computed with gonum on the same clipped features, for the global
// and per-class forms. Tolerance 1e-8 relative (Frobenius): the clipping is
// exact (see exactClipData) and both computations accumulate in float64, so
// they differ only by summation order and the solvers' rounding (about
// 1e-15 times the condition number, below 1e3 here).
func TestLSClosedForm(t *testing.T) {
	data := exactClipData(200, 4)
	n, dim := float64(data.X.Rows), float64(data.X.Cols)
	cases := []struct {
		name      string
		ls        optim.LS
		lambda    float64 // expected ridge
		perClass  bool
		alpha     float64
		wantClips bool
	}{
		{"Global/DefaultRidge", optim.LS{ClipNorm: 1, Global: true}, 1e-3 * n / dim, false, 0, true},
		{"Global/Ridge", optim.LS{ClipNorm: 1, Ridge: 0.7, Global: true}, 0.7, false, 0, true},
		{"Global/NoClipping", optim.LS{ClipNorm: 8, Ridge: 0.7, Global: true}, 0.7, false, 0, false},
		{"PerClass/DefaultRidge", optim.LS{ClipNorm: 1, PerClass: true}, 1e-3 * n / dim, true, 0.2, true},
		{"PerClass/NegWeight", optim.LS{ClipNorm: 1, PerClass: true, NegWeight: 0.25, Ridge: 0.7}, 0.7, true, 0.25, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.ls
			s.Privacy = optim.Privacy{Epsilon: math.Inf(1)}
			res, err := s.Solve(context.Background(), data, nil, dp.NewSeededSource(1))
			if err != nil {
				t.Fatalf("Solve: %v", err)
			}
			want := ridgeLS(t, data, s.ClipNorm, c.lambda, c.perClass, c.alpha)
			if e := relErr(res.Model.W, want); e > 1e-8 {
				t.Errorf("relative error from the closed form = %.3g, want ≤ 1e-8", e)
			}
			// Power: the same closed form without clipping, or with a ridge
			// 1 % off, is far from the model.
			if c.wantClips {
				if e := relErr(res.Model.W, ridgeLS(t, data, math.Inf(1), c.lambda, c.perClass, c.alpha)); e < 1e-3 {
					t.Errorf("the model matches the unclipped closed form too (error %.3g): the test has no power", e)
				}
			}
			if e := relErr(res.Model.W, ridgeLS(t, data, s.ClipNorm, 1.01*c.lambda, c.perClass, c.alpha)); e < 1e-6 {
				t.Errorf("the model matches the closed form with λ 1 %% off (error %.3g): the test has no power", e)
			}
			if res.Model.Bias != nil {
				t.Errorf("Bias = %v, want nil (LS fits no intercept)", res.Model.Bias)
			}
		})
	}
}

// TestLSReport checks the privacy a private DP-LS run reports against
// independent computations: the noise multipliers are accountant.Calibrate's
// for two equal full-batch Gaussian releases, which under GDP is z = √2/μ with
// μ = GaussianMu(ε, δ); the sensitivities are C² (Gram) and C (class sums);
// the ε spent is GDP's ε of Plan's event, which is what `dpopt account`
// prints for the report's releases (GaussianEpsilon of μ = √Σ 1/z²).
func TestLSReport(t *testing.T) {
	data := optimtest.Synthetic(300, 8, 3, 2)
	for _, perClass := range []bool{false, true} {
		for _, target := range []struct{ eps, delta float64 }{{0.1, 1e-5}, {1, 1e-5}, {8, 1e-6}} {
			t.Run(fmt.Sprintf("PerClass=%t/ε=%g", perClass, target.eps), func(t *testing.T) {
				const clip = 0.5
				s := &optim.LS{Privacy: optim.Privacy{Epsilon: target.eps, Delta: target.delta}, ClipNorm: clip, PerClass: perClass, Global: !perClass}
				ev, err := s.Plan(data.X.Rows)
				if err != nil {
					t.Fatalf("Plan: %v", err)
				}
				res, err := s.Solve(context.Background(), data, nil, dp.NewSeededSource(1))
				if err != nil {
					t.Fatalf("Solve: %v", err)
				}
				rep := res.Report
				z, err := accountant.Calibrate(accountant.GDP{}, func(z float64) (accountant.Event, error) {
					return accountant.Composed{Events: []accountant.Event{
						accountant.Gaussian{NoiseMultiplier: z}, accountant.Gaussian{NoiseMultiplier: z}}}, nil
				}, target.eps, target.delta)
				if err != nil {
					t.Fatalf("Calibrate: %v", err)
				}
				mu, err := accountant.GaussianMu(target.eps, target.delta)
				if err != nil {
					t.Fatalf("GaussianMu: %v", err)
				}
				// Calibrate's precision is 1e-10 relative; GDP's closed form agrees to it.
				if !approx(z, math.Sqrt2/mu, 1e-9) {
					t.Errorf("Calibrate gives z = %.12g, closed form √2/μ = %.12g", z, math.Sqrt2/mu)
				}
				gram := "gram"
				if perClass {
					gram = "class_grams"
				}
				want := []optim.Release{
					{Label: gram, NoiseMultiplier: z, Sensitivity: clip * clip, Sigma: z * clip * clip, SamplingRate: 1, Count: 1},
					{Label: "class_sums", NoiseMultiplier: z, Sensitivity: clip, Sigma: z * clip, SamplingRate: 1, Count: 1},
				}
				if len(rep.Releases) != len(want) {
					t.Fatalf("got %d releases, want %d", len(rep.Releases), len(want))
				}
				for i, w := range want {
					g := rep.Releases[i]
					if g.Label != w.Label || g.Count != w.Count || g.SamplingRate != w.SamplingRate ||
						!approx(g.NoiseMultiplier, w.NoiseMultiplier, 1e-9) || !approx(g.Sensitivity, w.Sensitivity, 1e-15) ||
						!approx(g.Sigma, w.Sigma, 1e-9) {
						t.Errorf("release %d: got %+v, want %+v", i, g, w)
					}
				}
				if zs := rep.NoiseMultipliers(); len(zs) != 2 || zs[0] != rep.Releases[0].NoiseMultiplier {
					t.Errorf("NoiseMultipliers() = %v", zs)
				}
				gdp, err := accountant.GDP{}.Epsilon(ev, target.delta)
				if err != nil {
					t.Fatalf("GDP: %v", err)
				}
				// What `dpopt account` computes from the releases: μ = √Σ 1/z².
				var mu2 float64
				for _, r := range rep.Releases {
					mu2 += float64(r.Count) / (r.NoiseMultiplier * r.NoiseMultiplier)
				}
				cli, err := accountant.GaussianEpsilon(math.Sqrt(mu2), target.delta)
				if err != nil {
					t.Fatalf("GaussianEpsilon: %v", err)
				}
				if rep.Accountant != "exact" || !approx(rep.Spent, gdp, 1e-12) || !approx(rep.Epsilons["exact"], gdp, 1e-12) || !approx(cli, gdp, 1e-9) {
					t.Errorf("report: accountant %q, Spent %.12g, Epsilons[exact] %.12g; want \"exact\", %.12g (account: %.12g)",
						rep.Accountant, rep.Spent, rep.Epsilons["exact"], gdp, cli)
				}
				// Calibration meets the target and wastes none of it.
				if gdp > target.eps || gdp < target.eps*(1-1e-6) {
					t.Errorf("ε spent = %.12g, want in [%g·(1 − 1e-6), %g]", gdp, target.eps, target.eps)
				}
				if r, ok := rep.Epsilons["rdp"]; !ok || r < gdp {
					t.Errorf("Epsilons[rdp] = %g (present %t), want ≥ the exact %g", r, ok, gdp)
				}
			})
		}
	}
}

// approx reports whether a and b agree to relative tolerance tol.
func approx(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}

// TestLSDigitsAccuracy checks the test accuracy of DP-LS with default
// settings (ClipNorm 1 on the L2-normalised rows, default ridge) on the
// digits split (1200 train / 597 test) at δ = 1e-5, averaged over seeds 1, 2
// and 3, against floors a few points below the measured means.
//
// Measured, global form (mean of 5 seeds, by the project lead): ε = 0.1 →
// 20.8 %, 0.3 → 51.7 %, 1 → 80.8 %, 3 → 88.3 %, 8 → 91.0 %, non-private
// 93.1 %. This test's seeds 1–3 give 20.9, 52.9, 81.7, 88.2, 91.2 and 93.1 %;
// the per-class form (α = 1) gives 76.4 % at ε = 1, 86.3 % at 3, 90.0 % at 8
// and 93.5 % non-private. The floors sit 5–9 points below at small ε, where a
// 3-seed mean spreads most, and 2–4 points below at large ε. The default
// seeds make the test deterministic.
func TestLSDigitsAccuracy(t *testing.T) {
	train, test, err := optimtest.Digits()
	if err != nil {
		t.Fatal(err)
	}
	inf := math.Inf(1)
	cases := []struct {
		perClass   bool
		eps, floor float64
	}{
		{false, 0.1, 0.14},
		{false, 0.3, 0.45},
		{false, 1, 0.75},
		{false, 3, 0.85},
		{false, 8, 0.87},
		{false, inf, 0.92},
		// The per-class defaults (α = 0.2, ridge scale 0.35) were chosen on
		// MNIST; on the 1200 digits rows the per-class form is 8 points
		// below the global one at ε = 1 (LS.RidgeScale).
		{true, 1, 0.65},
		{true, 3, 0.82},
		{true, 8, 0.86},
		{true, inf, 0.92},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("PerClass=%t/ε=%g", c.perClass, c.eps), func(t *testing.T) {
			var sum float64
			seeds := []uint64{1, 2, 3}
			for _, seed := range seeds {
				s := &optim.LS{Privacy: optim.Privacy{Epsilon: c.eps, Delta: 1e-5}, ClipNorm: 1, PerClass: c.perClass, Global: !c.perClass}
				res, err := s.Solve(context.Background(), train, nil, dp.NewSeededSource(seed))
				if err != nil {
					t.Fatalf("Solve: %v", err)
				}
				acc, err := res.Model.Accuracy(test, 0)
				if err != nil {
					t.Fatalf("Accuracy: %v", err)
				}
				sum += acc
			}
			mean := sum / float64(len(seeds))
			t.Logf("mean test accuracy over seeds %v: %.4f", seeds, mean)
			if mean < c.floor {
				t.Errorf("mean test accuracy = %.4f, want ≥ %.2f", mean, c.floor)
			}
		})
	}
}
