package optim_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/internal/stattest"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

var sgdNonPrivate = optim.Privacy{Epsilon: math.Inf(1)}

// sgdProblem returns n rows of dimension d, iid N(0, 1/d) entries (norm about
// 1), labelled by a random linear model with 30% of the labels redrawn at
// random, so that no class is linearly separable and the unregularised
// losses have a finite minimiser.
func sgdProblem(n, d, k int, seed uint64) *optim.Data {
	r := rand.New(rand.NewPCG(seed, 7))
	x := linalg.NewMatrix32(n, d)
	w := make([]float64, k*d)
	for i := range w {
		w[i] = r.NormFloat64()
	}
	labels := make([]int, n)
	for i := range n {
		row := x.Row(i)
		for j := range row {
			row[j] = float32(r.NormFloat64() / math.Sqrt(float64(d)))
		}
		best := math.Inf(-1)
		for l := range k {
			s := 0.0
			for j, v := range row {
				s += w[l*d+j] * float64(v)
			}
			if s > best {
				best, labels[i] = s, l
			}
		}
		if r.Float64() < 0.3 {
			labels[i] = r.IntN(k)
		}
	}
	return &optim.Data{X: x, Labels: labels, Classes: k}
}

// sgdNaive evaluates the mean loss ("softmax" or "sigmoid", unweighted, no
// fixed bias), its gradient and its Hessian at the flat parameters w = [W,
// bias] with plain per-example loops in float64 — a reference independent of
// package losses.
func sgdNaive(d *optim.Data, loss string, bias bool, w []float64) (float64, []float64, *mat.SymDense) {
	k, dim, n := d.Classes, d.X.Cols, d.X.Rows
	p := dim
	if bias {
		p++
	}
	idx := func(l, j int) int {
		if j == dim {
			return k*dim + l
		}
		return l*dim + j
	}
	f, g, h := 0.0, make([]float64, len(w)), mat.NewSymDense(len(w), nil)
	xh, s, r, c := make([]float64, p), make([]float64, k), make([]float64, k), make([]float64, k*k)
	for i := range n {
		for j, v := range d.X.Row(i) {
			xh[j] = float64(v)
		}
		if bias {
			xh[dim] = 1
		}
		for l := range k {
			s[l] = 0
			for j := range p {
				s[l] += w[idx(l, j)] * xh[j]
			}
		}
		y := d.Labels[i]
		clear(c)
		switch loss {
		case "softmax":
			m := floats.Max(s)
			z := 0.0
			for _, v := range s {
				z += math.Exp(v - m)
			}
			f += m + math.Log(z) - s[y]
			for l := range k {
				pl := math.Exp(s[l]-m) / z
				r[l] = pl
				c[l*k+l] += pl
			}
			for l := range k {
				for m := range k {
					c[l*k+m] -= r[l] * r[m]
				}
			}
			r[y]--
		case "sigmoid":
			for l := range k {
				sg := 1 / (1 + math.Exp(-s[l]))
				if l == y {
					f += math.Log1p(math.Exp(-s[l]))
					r[l] = sg - 1
				} else {
					f += math.Log1p(math.Exp(s[l]))
					r[l] = sg
				}
				c[l*k+l] = sg * (1 - sg)
			}
		}
		for l := range k {
			for j := range p {
				g[idx(l, j)] += r[l] * xh[j]
				for m := range k {
					for jj := range p {
						if a, b := idx(l, j), idx(m, jj); a <= b {
							h.SetSym(a, b, h.At(a, b)+c[l*k+m]*xh[j]*xh[jj])
						}
					}
				}
			}
		}
	}
	floats.Scale(1/float64(n), g)
	h.ScaleSym(1/float64(n), h)
	return f / float64(n), g, h
}

// sgdMinimum returns the minimiser of the mean loss from zero, by Newton's
// method with backtracking on sgdNaive, stopped at gradient norm 1e-12.
// (gonum's optimize.LBFGS would be the natural reference, but gonum/optimize
// imports stat/distmv, which needs golang.org/x/tools, not in go.sum.) The
// softmax Hessian is singular along adding one vector to every class; the
// gradient has no component there, and 1e-12·I keeps the solve defined.
func sgdMinimum(t *testing.T, d *optim.Data, loss string, bias bool) []float64 {
	t.Helper()
	size := d.Classes * d.X.Cols
	if bias {
		size += d.Classes
	}
	w := make([]float64, size)
	for iter := 0; ; iter++ {
		f, g, h := sgdNaive(d, loss, bias, w)
		if floats.Norm(g, 2) <= 1e-12 {
			return w
		}
		require.Less(t, iter, 100, "reference Newton did not converge")
		for i := range size {
			h.SetSym(i, i, h.At(i, i)+1e-12)
		}
		var step mat.VecDense
		require.NoError(t, step.SolveVec(h, mat.NewVecDense(size, g)))
		slope := -floats.Dot(g, step.RawVector().Data)
		for eta := 1.0; ; eta /= 2 {
			require.Greater(t, eta, 1e-20, "reference line search failed")
			next := make([]float64, size)
			floats.AddScaledTo(next, w, -eta, step.RawVector().Data)
			if fn, gn, _ := sgdNaive(d, loss, bias, next); fn <= f+1e-4*eta*slope || floats.Norm(gn, 2) <= floats.Norm(g, 2)/2 {
				w = next
				break
			}
		}
	}
}

// sgdCentre subtracts, from each weight column and from the bias of the flat
// parameters w, its mean over the k classes.
func sgdCentre(w []float64, k int, bias bool) {
	dim := len(w) / k
	if bias {
		dim = (len(w) - k) / k
	}
	var cols [][]int
	for j := range dim {
		var c []int
		for l := range k {
			c = append(c, l*dim+j)
		}
		cols = append(cols, c)
	}
	if bias {
		var c []int
		for l := range k {
			c = append(c, k*dim+l)
		}
		cols = append(cols, c)
	}
	for _, c := range cols {
		m := 0.0
		for _, i := range c {
			m += w[i]
		}
		m /= float64(k)
		for _, i := range c {
			w[i] -= m
		}
	}
}

// sgdFlat returns a model as a flat [W, bias] vector.
func sgdFlat(m *optim.Model) []float64 {
	return append(append([]float64(nil), m.W.RawMatrix().Data...), m.Bias...)
}

// TestSGDNonPrivateReachesMinimum: non-private full-batch DP-GD without
// clipping (C_g = 100, far above every per-example gradient norm here) is
// plain gradient descent, which must reach the minimiser of the same
// regularisation-free convex loss found by Newton's method on a naive
// float64 implementation (sgdMinimum).
func TestSGDNonPrivateReachesMinimum(t *testing.T) {
	data := sgdProblem(80, 4, 3, 1)
	tests := []struct {
		name string
		loss losses.Loss
		bias bool
		lr   float64
	}{
		{"softmax", losses.Softmax{}, false, 4},
		{"softmax/bias", losses.Softmax{}, true, 4},
		{"sigmoid/bias", losses.Sigmoid{}, true, 4},
	}
	for _, tc := range tests {
		for _, f64 := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/float64=%v", tc.name, f64), func(t *testing.T) {
				want := sgdMinimum(t, data, tc.loss.Name(), tc.bias)
				s := &optim.SGD{Privacy: sgdNonPrivate, Steps: 3000, BatchSize: 80, GradClipNorm: 100,
					Loss: tc.loss, LearningRate: tc.lr, TrainBias: tc.bias, Float64: f64}
				res, err := s.Solve(context.Background(), data, nil, dp.NewSeededSource(1))
				require.NoError(t, err)
				got := sgdFlat(res.Model)
				if tc.loss.Name() == "softmax" {
					// Softmax's minimiser is unique only up to adding one
					// vector to every class (weights and bias); compare the
					// centred ones.
					sgdCentre(got, data.Classes, tc.bias)
					sgdCentre(want, data.Classes, tc.bias)
				}
				// Float64: gradient descent converges linearly here (3000
				// steps end at gradient norm ≈ 1e-16); 1e-6 is far above its
				// residual error and the reference's (gradient below
				// 1e-12), and far below the distance of any wrong answer.
				// Float32 (the default): the gradient's float32 rounding
				// does not vanish at the minimum; it leaves a gradient norm
				// of 5e-9 to 1.1e-8 here (measured): 1e-7 allows ×10, and
				// 1e-5 the parameters' matching displacement.
				tolW, tolG := 1e-6, 1e-8
				if !f64 {
					tolW, tolG = 1e-5, 1e-7
				}
				for i := range want {
					if math.Abs(got[i]-want[i]) > tolW {
						t.Fatalf("parameter %d = %.9f, want %.9f (Newton)", i, got[i], want[i])
					}
				}
				last := res.Report.Steps[len(res.Report.Steps)-1]
				if last.GradNorm > tolG {
					t.Errorf("final gradient norm %g, want ≤ %g", last.GradNorm, tolG)
				}
			})
		}
	}
}

// TestSGDL2 checks the weight decay: with L2 = λ the non-private fixed point
// satisfies ∇(mean loss) + λW = 0 for the weights.
func TestSGDL2(t *testing.T) {
	data := sgdProblem(60, 3, 3, 2)
	const lambda = 0.5
	// Float64: converging to rounding needs exact gradients.
	s := &optim.SGD{Privacy: sgdNonPrivate, Steps: 2000, BatchSize: 60, GradClipNorm: 100, L2: lambda, LearningRate: 1,
		Float64: true}
	res, err := s.Solve(context.Background(), data, nil, dp.NewSeededSource(1))
	require.NoError(t, err)
	var b losses.Batch
	require.NoError(t, losses.Softmax{}.Eval(&b, data.X, data.Labels, res.Model.W, nil, 1))
	g := new(mat.Dense)
	require.NoError(t, b.Grad(g, nil, 1))
	g.Scale(1/60.0, g)
	g.Add(g, scaled(lambda, res.Model.W))
	// Strongly convex (λ = 0.5): 2000 steps converge to rounding.
	if norm := mat.Norm(g, 2); norm > 1e-10 {
		t.Errorf("‖∇f + λW‖ = %g at the result, want ≤ 1e-10", norm)
	}
	if mat.Norm(res.Model.W, 2) == 0 {
		t.Error("zero model")
	}
}

func scaled(a float64, m mat.Matrix) *mat.Dense {
	var out mat.Dense
	out.Scale(a, m)
	return &out
}

// TestSGDPoissonBatchSizes checks the sampler through the report of a
// non-private run: T = 2000 batch sizes are iid Binomial(n, q), n = 1000,
// q = 0.1. Two checks at α = 1e-6 each (2e-6 per seed): the total against
// N(Tnq, Tnq(1−q)) (CLT; the total is Binomial(Tn, q)), and the sample
// variance against χ²(T−1)·nq(1−q)/(T−1) — the normal-theory interval, which
// a binomial with nq = 100 matches to within its excess kurtosis 0.005.
func TestSGDPoissonBatchSizes(t *testing.T) {
	const n, batch, steps, alpha = 1000, 100, 2000, 1e-6
	data := sgdProblem(n, 2, 2, 3)
	s := &optim.SGD{Privacy: sgdNonPrivate, Steps: steps, BatchSize: batch, GradClipNorm: 1, LearningRate: 0.1}
	res, err := s.Solve(context.Background(), data, nil, stattest.Source(t))
	require.NoError(t, err)
	sizes := make([]float64, steps)
	for i, st := range res.Report.Steps {
		sizes[i] = float64(st.Batch)
	}
	q := float64(batch) / n
	mean, variance := stat.MeanVariance(sizes, nil)
	sd := math.Sqrt(n * q * (1 - q))
	if tol := stattest.MeanTol(sd, steps, alpha); math.Abs(mean-n*q) > tol {
		t.Errorf("mean batch size %.3f, want %g ± %.3f", mean, n*q, tol)
	}
	if lo, hi := stattest.VarianceRange(sd, steps, alpha); variance < lo || variance > hi {
		t.Errorf("batch size variance %.2f, want in [%.2f, %.2f] (nq(1−q) = %g)", variance, lo, hi, sd*sd)
	}
}

// TestSGDEmptyBatches runs at q = 1/1000 on 1000 examples: a batch is empty
// with probability 0.999¹⁰⁰⁰ ≈ 0.37, and an empty step must release noise
// only (a positive gradient norm from the noise alone) and leave the model finite.
func TestSGDEmptyBatches(t *testing.T) {
	data := sgdProblem(1000, 3, 2, 4)
	for _, priv := range []optim.Privacy{
		sgdNonPrivate,
		{Epsilon: 1, Delta: 1e-5, Accountant: accountant.RDP{}},
	} {
		t.Run(fmtEps(priv.Epsilon), func(t *testing.T) {
			s := &optim.SGD{Privacy: priv, Steps: 40, BatchSize: 1, GradClipNorm: 1}
			res, err := s.Solve(context.Background(), data, nil, dp.NewSeededSource(5))
			require.NoError(t, err)
			empty := 0
			for i, st := range res.Report.Steps {
				if st.Batch != 0 {
					continue
				}
				empty++
				if st.Loss != 0 {
					t.Errorf("step %d: empty batch with loss %g, want 0", i, st.Loss)
				}
				if got := st.GradNorm > 0; got != !priv.NonPrivate() {
					t.Errorf("step %d: empty batch, gradient norm %g (private %v)", i, st.GradNorm, !priv.NonPrivate())
				}
			}
			// P(no empty batch in 40) = 0.63⁴⁰ < 1e-7.
			if empty == 0 {
				t.Fatal("no empty batch in 40 steps at q = 0.001")
			}
			for _, v := range sgdFlat(res.Model) {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatal("non-finite model")
				}
			}
		})
	}
}

func fmtEps(e float64) string {
	if math.IsInf(e, 1) {
		return "nonprivate"
	}
	return "private"
}

// wrappedSource is a Source of a type dp does not know, so that its normal
// draws go through its Normal method.
type wrappedSource struct{ dp.Source }

// TestSGDReproducible: same seed ⇒ bit-identical model and per-step report
// for Workers 1, 2 and 3 — with one worker the step's randomness is drawn
// after its gradient, with more a Team draws it a step ahead (Poisson
// batches) or a helper during the gradient (the full batch) —
// for the seeded source, a Source of another type, a hardened one (whose
// noise is always drawn after the gradient) and a non-private run; another
// seed ⇒ another model.
func TestSGDReproducible(t *testing.T) {
	data := sgdProblem(300, 8, 3, 5)
	priv := optim.Privacy{Epsilon: 2, Delta: 1e-5, Accountant: accountant.RDP{}}
	sources := map[string]func(seed uint64) dp.Source{
		"seeded":   dp.NewSeededSource,
		"wrapped":  func(seed uint64) dp.Source { return wrappedSource{dp.NewSeededSource(seed)} },
		"hardened": func(seed uint64) dp.Source { return dp.Harden(dp.NewSeededSource(seed)) },
	}
	for _, batch := range []int{30, 300} {
		for name, source := range sources {
			for _, p := range []optim.Privacy{priv, sgdNonPrivate} {
				t.Run(fmt.Sprintf("%s/%s/%s", map[int]string{30: "poisson", 300: "full"}[batch], name, fmtEps(p.Epsilon)), func(t *testing.T) {
					run := func(workers int, seed uint64) *optim.Result {
						s := &optim.SGD{Privacy: p, Steps: 20, BatchSize: batch, GradClipNorm: 0.5, Workers: workers,
							Optimizer: optim.Adam{}, TrainBias: true}
						res, err := s.Solve(context.Background(), data, nil, source(seed))
						require.NoError(t, err)
						return res
					}
					a := run(1, 11)
					for _, workers := range []int{2, 3} {
						b := run(workers, 11)
						if !floats.Same(sgdFlat(a.Model), sgdFlat(b.Model)) {
							t.Errorf("Workers 1 and %d give different models for the same seed", workers)
						}
						for i := range a.Report.Steps {
							if a.Report.Steps[i] != b.Report.Steps[i] {
								t.Errorf("Workers %d: step %d: %+v vs %+v", workers, i, a.Report.Steps[i], b.Report.Steps[i])
							}
						}
					}
					if c := run(2, 12); (p.Epsilon != sgdNonPrivate.Epsilon || batch < 300) && floats.Equal(sgdFlat(a.Model), sgdFlat(c.Model)) {
						t.Error("seeds 11 and 12 give the same model")
					}
				})
			}
		}
	}
}

// panickySource panics on its normal draw number after.
type panickySource struct {
	dp.Source
	after int
}

func (p *panickySource) Normal(dst []float64) {
	if p.after--; p.after < 0 {
		panic("panickySource: broken")
	}
	p.Source.Normal(dst)
}

// TestSGDSourcePanicReachesCaller: a Source that panics while the helper
// goroutine draws ahead (Workers 2) makes Solve panic on the caller's
// goroutine, where it can be recovered, as with Workers 1 — not crash the
// process from the helper.
func TestSGDSourcePanicReachesCaller(t *testing.T) {
	data := sgdProblem(300, 8, 3, 5)
	for _, workers := range []int{1, 2} {
		s := &optim.SGD{Privacy: optim.Privacy{Epsilon: 2, Delta: 1e-5, Accountant: accountant.RDP{}},
			Steps: 20, BatchSize: 30, GradClipNorm: 0.5, Workers: workers}
		src := &panickySource{Source: dp.NewSeededSource(3), after: 5}
		got := func() (v any) {
			defer func() { v = recover() }()
			_, _ = s.Solve(context.Background(), data, nil, src)
			return nil
		}()
		if got != "panickySource: broken" {
			t.Errorf("Workers %d: recovered %v, want the Source's panic", workers, got)
		}
	}
}

// TestSGDNoiseScale isolates the injected noise. With one plain step at
// learning rate 1 from zero, W = −(S + N)/B, where S is the clipped sum and N
// the noise; the non-private run with the same seed draws the same batch and
// gives −S/B. So −B·(W_private − W_nonprivate) must be iid N(0, (z·C_g)²) in
// every coordinate, bias included, with z the reported noise multiplier and
// B the EXPECTED batch size (also for a Poisson batch whose size differs).
// Each case makes stattest.NormalChecks checks at α = 1e-6, so a correct
// implementation fails with probability ≤ 6e-6 per seed; the power check
// (rejecting 1.1·z·C_g) fails falsely with negligible probability (DKW at
// 20 000 draws).
func TestSGDNoiseScale(t *testing.T) {
	const k, dim, alpha = 10, 2000, 1e-6
	data := sgdProblem(40, dim, k, 6)
	tests := []struct {
		name  string
		batch int
		clip  float64
	}{
		{"full", 40, 0.7},
		{"poisson", 20, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := func(p optim.Privacy) *optim.Result {
				s := &optim.SGD{Privacy: p, Steps: 1, BatchSize: tc.batch, GradClipNorm: tc.clip, LearningRate: 1, TrainBias: true}
				res, err := s.Solve(context.Background(), data, nil, stattest.Source(t))
				require.NoError(t, err)
				return res
			}
			priv, plain := run(optim.Privacy{Epsilon: 4, Delta: 1e-5, Accountant: accountant.RDP{}}), run(sgdNonPrivate)
			require.Equal(t, plain.Report.Steps[0].Batch, priv.Report.Steps[0].Batch, "same seed, same batch")
			rel := priv.Report.Releases[0]
			sigma := rel.NoiseMultiplier * tc.clip
			require.InDelta(t, sigma, rel.Sigma, 1e-12*sigma)
			a, b := sgdFlat(priv.Model), sgdFlat(plain.Model)
			require.Len(t, a, k*dim+k)
			noise := make([]float64, len(a))
			for i := range a {
				noise[i] = -float64(tc.batch) * (a[i] - b[i])
			}
			stattest.CheckNormal(t, tc.name, noise, sigma, alpha, 0)
			if !stattest.RejectsSigma(noise, 1.1*sigma, alpha, 0) {
				t.Error("no power: KS does not reject N(0, (1.1·z·C_g)²)")
			}
		})
	}
}

// TestSGDPlanAndLedger: Plan's event is what Solve records, once, before the
// first step, and the report describes it.
func TestSGDPlanAndLedger(t *testing.T) {
	data := sgdProblem(200, 4, 3, 7)
	tests := []struct {
		name  string
		batch int
		acc   accountant.Accountant
		rate  float64
	}{
		{"full/exact", 200, accountant.GDP{}, 1},
		{"poisson/rdp", 20, accountant.RDP{}, 0.1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &optim.SGD{Privacy: optim.Privacy{Epsilon: 1, Delta: 1e-5, Accountant: tc.acc}, Steps: 25, BatchSize: tc.batch, GradClipNorm: 1}
			plan, err := s.Plan(200)
			require.NoError(t, err)
			l, err := accountant.NewLedger(accountant.Budget{Epsilon: 1, Delta: 1e-5}, tc.acc)
			require.NoError(t, err)
			res, err := s.Solve(context.Background(), data, l, dp.NewSeededSource(1))
			require.NoError(t, err)
			entries := l.Entries()
			require.Len(t, entries, 1)
			want, _ := accountant.MarshalEvent(plan)
			got, _ := accountant.MarshalEvent(entries[0].Event)
			if string(got) != string(want) {
				t.Errorf("ledger recorded %s, Plan promised %s", got, want)
			}
			rep := res.Report
			if rep.Method != "sgd" || len(rep.Steps) != 25 || len(rep.Releases) != 1 {
				t.Fatalf("report: method %q, %d steps, %d releases", rep.Method, len(rep.Steps), len(rep.Releases))
			}
			rel := rep.Releases[0]
			if rel.Label != "gradient" || rel.Count != 25 || rel.SamplingRate != tc.rate || rel.Sensitivity != 1 {
				t.Errorf("release %+v, want gradient ×25 at rate %g, sensitivity 1", rel, tc.rate)
			}
			// Calibration meets the target without overshooting it by much.
			if rep.Spent > 1 || rep.Spent < 0.99 {
				t.Errorf("spent ε = %g, want in [0.99, 1]", rep.Spent)
			}
		})
	}
	if _, err := (&optim.SGD{Privacy: sgdNonPrivate, Steps: 1, BatchSize: 1, GradClipNorm: 1}).Plan(10); !errors.Is(err, optim.ErrNonPrivate) {
		t.Errorf("non-private Plan: %v, want ErrNonPrivate", err)
	}
}

// TestSGDOverBudget: a ledger that cannot afford the run refuses it; nothing
// is recorded and no model is returned.
func TestSGDOverBudget(t *testing.T) {
	data := sgdProblem(100, 3, 2, 8)
	s := &optim.SGD{Privacy: optim.Privacy{Epsilon: 1, Delta: 1e-5}, Steps: 10, BatchSize: 100, GradClipNorm: 1}
	tests := []struct {
		name  string
		spent float64 // ε already spent on the ledger, by a Gaussian release
	}{
		{"small budget", 0},
		{"partly spent", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Two releases at ε = 1 each compose (GDP) to ε ≈ 1.6 at δ = 1e-5.
			budget := 0.5
			if tc.spent > 0 {
				budget = 1.2
			}
			l, err := accountant.NewLedger(accountant.Budget{Epsilon: budget, Delta: 1e-5}, accountant.GDP{})
			require.NoError(t, err)
			if tc.spent > 0 {
				mu, err := accountant.GaussianMu(tc.spent, 1e-5)
				require.NoError(t, err)
				require.NoError(t, l.Spend("earlier", accountant.Gaussian{NoiseMultiplier: 1 / mu}))
			}
			before := len(l.Entries())
			res, err := s.Solve(context.Background(), data, l, dp.NewSeededSource(1))
			if !errors.Is(err, accountant.ErrBudgetExceeded) {
				t.Fatalf("err = %v, want ErrBudgetExceeded", err)
			}
			if res != nil {
				t.Error("a model was returned")
			}
			if got := len(l.Entries()); got != before {
				t.Errorf("ledger has %d entries, want %d", got, before)
			}
		})
	}
	// A non-private run against a finite budget is refused too.
	l, err := accountant.NewLedger(accountant.Budget{Epsilon: 100, Delta: 1e-5}, accountant.GDP{})
	require.NoError(t, err)
	np := *s
	np.Privacy = sgdNonPrivate
	if _, err := np.Solve(context.Background(), data, l, dp.NewSeededSource(1)); !errors.Is(err, accountant.ErrBudgetExceeded) {
		t.Errorf("non-private run on a finite ledger: %v, want ErrBudgetExceeded", err)
	}
}

// cancelSource cancels a context after a number of uniform draws, i.e. in
// the middle of a Poisson-sampled run.
type cancelSource struct {
	dp.Source
	left   int
	cancel context.CancelFunc
}

func (c *cancelSource) Uint64() uint64 {
	if c.left--; c.left == 0 {
		c.cancel()
	}
	return c.Source.Uint64()
}

// TestSGDCancel: a cancelled run returns the context's error and no model;
// the ledger keeps the reservation of all planned steps.
func TestSGDCancel(t *testing.T) {
	data := sgdProblem(100, 3, 2, 9)
	s := &optim.SGD{Privacy: optim.Privacy{Epsilon: 1, Delta: 1e-5, Accountant: accountant.RDP{}}, Steps: 50, BatchSize: 10, GradClipNorm: 1}
	for _, tc := range []struct {
		name  string
		draws int // uniform draws before cancellation; 0: cancelled before Solve
	}{{"before", 0}, {"step 3", 3*100 + 50}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var src dp.Source = dp.NewSeededSource(1)
			if tc.draws == 0 {
				cancel()
			} else {
				src = &cancelSource{Source: src, left: tc.draws, cancel: cancel}
			}
			l, err := accountant.NewLedger(accountant.Budget{Epsilon: 1, Delta: 1e-5}, accountant.RDP{})
			require.NoError(t, err)
			res, err := s.Solve(ctx, data, l, src)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if res != nil {
				t.Error("a model was returned")
			}
			plan, err := s.Plan(100)
			require.NoError(t, err)
			entries := l.Entries()
			require.Len(t, entries, 1, "the reservation stays recorded")
			want, _ := accountant.MarshalEvent(plan)
			got, _ := accountant.MarshalEvent(entries[0].Event)
			require.Equal(t, string(want), string(got))
		})
	}
}

func TestSGDBadInput(t *testing.T) {
	data := sgdProblem(50, 3, 2, 10)
	good := optim.SGD{Privacy: optim.Privacy{Epsilon: 1, Delta: 1e-5}, Steps: 5, BatchSize: 10, GradClipNorm: 1}
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name   string
		mod    func(s *optim.SGD)
		src    dp.Source
		data   *optim.Data
		target error // nil: want *accountant.ParamError
	}{
		{name: "steps 0", mod: func(s *optim.SGD) { s.Steps = 0 }},
		{name: "steps negative", mod: func(s *optim.SGD) { s.Steps = -3 }},
		{name: "batch 0", mod: func(s *optim.SGD) { s.BatchSize = 0 }},
		{name: "batch > n", mod: func(s *optim.SGD) { s.BatchSize = 51 }},
		{name: "clip 0", mod: func(s *optim.SGD) { s.GradClipNorm = 0 }},
		{name: "clip negative", mod: func(s *optim.SGD) { s.GradClipNorm = -1 }},
		{name: "clip NaN", mod: func(s *optim.SGD) { s.GradClipNorm = nan }},
		{name: "clip Inf", mod: func(s *optim.SGD) { s.GradClipNorm = inf }},
		{name: "lr negative", mod: func(s *optim.SGD) { s.LearningRate = -0.1 }},
		{name: "lr NaN", mod: func(s *optim.SGD) { s.LearningRate = nan }},
		{name: "lr Inf", mod: func(s *optim.SGD) { s.LearningRate = inf }},
		{name: "L2 negative", mod: func(s *optim.SGD) { s.L2 = -1 }},
		{name: "L2 NaN", mod: func(s *optim.SGD) { s.L2 = nan }},
		{name: "workers negative", mod: func(s *optim.SGD) { s.Workers = -1 }},
		{name: "epsilon NaN", mod: func(s *optim.SGD) { s.Epsilon = nan }},
		{name: "epsilon 0", mod: func(s *optim.SGD) { s.Epsilon = 0 }},
		{name: "delta 0", mod: func(s *optim.SGD) { s.Delta = 0 }},
		{name: "delta 1", mod: func(s *optim.SGD) { s.Delta = 1 }},
		{name: "split length", mod: func(s *optim.SGD) { s.Split = []float64{1, 1} }},
		{name: "schedule unknown", mod: func(s *optim.SGD) { s.Schedule = 9 }},
		{name: "momentum beta", mod: func(s *optim.SGD) { s.Optimizer = optim.Momentum{Beta: 1} }},
		{name: "adam beta2", mod: func(s *optim.SGD) { s.Optimizer = optim.Adam{Beta2: -1} }},
		{name: "fixed bias and trained bias", mod: func(s *optim.SGD) {
			s.Loss, s.TrainBias = losses.Sigmoid{FixedBias: losses.PaperFixedBias}, true
		}},
		{name: "nil source", src: nil},
		{name: "nil data", data: &optim.Data{}, target: linalg.ErrEmpty},
		{name: "bad label", data: &optim.Data{X: data.X, Labels: make([]int, 50), Classes: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			if tc.mod != nil {
				tc.mod(&s)
			}
			src := tc.src
			if tc.src == nil && tc.name != "nil source" {
				src = dp.NewSeededSource(1)
			}
			d := data
			if tc.data != nil {
				d = tc.data
			}
			res, err := s.Solve(context.Background(), d, nil, src)
			if res != nil {
				t.Error("a result was returned")
			}
			if tc.target != nil {
				if !errors.Is(err, tc.target) {
					t.Errorf("err = %v, want %v", err, tc.target)
				}
				return
			}
			var pe *accountant.ParamError
			if !errors.As(err, &pe) {
				t.Errorf("err = %v, want *accountant.ParamError", err)
			}
			if tc.mod != nil {
				if _, err := s.Plan(50); !errors.As(err, &pe) {
					t.Errorf("Plan: err = %v, want *accountant.ParamError", err)
				}
			}
		})
	}
}

// TestSGDSigmoidFixedBias: the paper's sigmoid loss with a fixed bias −10
// trains, and the model carries the fixed bias.
func TestSGDSigmoidFixedBias(t *testing.T) {
	data := sgdProblem(200, 4, 3, 11)
	s := &optim.SGD{Privacy: sgdNonPrivate, Steps: 200, BatchSize: 200, GradClipNorm: 1,
		Loss: losses.Sigmoid{FixedBias: losses.PaperFixedBias}}
	res, err := s.Solve(context.Background(), data, nil, dp.NewSeededSource(1))
	require.NoError(t, err)
	require.Equal(t, []float64{-10, -10, -10}, res.Model.Bias)
	steps := res.Report.Steps
	if !(steps[len(steps)-1].Loss < steps[0].Loss) {
		t.Errorf("loss went from %g to %g", steps[0].Loss, steps[len(steps)-1].Loss)
	}
}

// TestSGDDigits measures test accuracy on the digits split (1200 train, 597
// test, L2-normalised rows), softmax, C_g = 1, default learning rate, mean
// of seeds 1–3, at δ = 1e-5, T = 300 steps, default accountants (exact GDP
// for full batch, PLD for Poisson). Measured when the floors were set:
//
//	ε      full batch (B = 1200)   Poisson (B = 120, q = 0.1)
//	0.1    0.264                   0.317
//	0.3    0.626                   0.631
//	1      0.880                   0.865
//	3      0.927                   0.920
//	8      0.942                   0.937
//	∞      0.940                   0.942
//
// The floors sit 3 points below the measurements at ε = 1 and 8.
func TestSGDDigits(t *testing.T) {
	if testing.Short() {
		t.Skip("trains 12 models, 6 with PLD calibration (about 35 s)")
	}
	xtr, ytr, xte, yte, err := digits.Split()
	require.NoError(t, err)
	train := &optim.Data{X: xtr, Labels: ytr, Classes: digits.Classes}
	test := &optim.Data{X: xte, Labels: yte, Classes: digits.Classes}
	tests := []struct {
		name  string
		eps   float64
		batch int
		floor float64
	}{
		{"full/eps=1", 1, 1200, 0.85},
		{"full/eps=8", 8, 1200, 0.91},
		{"poisson/eps=1", 1, 120, 0.835},
		{"poisson/eps=8", 8, 120, 0.905},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &optim.SGD{Privacy: optim.Privacy{Epsilon: tc.eps, Delta: 1e-5}, Steps: 300, BatchSize: tc.batch, GradClipNorm: 1}
			sum := 0.0
			for seed := uint64(1); seed <= 3; seed++ {
				res, err := s.Solve(context.Background(), train, nil, dp.NewSeededSource(seed))
				require.NoError(t, err)
				acc, err := res.Model.Accuracy(test, 0)
				require.NoError(t, err)
				sum += acc
			}
			if mean := sum / 3; mean < tc.floor {
				t.Errorf("mean test accuracy %.3f, want ≥ %.3f", mean, tc.floor)
			} else {
				t.Logf("mean test accuracy %.3f (floor %.3f)", mean, tc.floor)
			}
		})
	}
}

// TestSGDConformance runs the optimtest suite on full-batch DP-GD (exact
// accountant) and on Poisson DP-SGD (RDP, for speed; PLD is exercised by
// TestSGDDigits), with a trained bias in the latter.
func TestSGDConformance(t *testing.T) {
	cases := []struct {
		name string
		cfg  optimtest.Config
	}{
		{"full", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.SGD{Privacy: p, Steps: 30, BatchSize: optimtest.DefaultN, GradClipNorm: 1}
			},
			// One N(0, 1) draw per weight per step.
			Draws: func(n, d, k int) int { return 30 * k * d },
		}},
		{"poisson/bias", optimtest.Config{
			New: func(p optim.Privacy) optim.Solver {
				return &optim.SGD{Privacy: p, Steps: 30, BatchSize: 24, GradClipNorm: 1, TrainBias: true, Optimizer: optim.Momentum{}}
			},
			Accountant: accountant.RDP{},
			Sampled:    true,
			// One draw per weight and per bias per step, empty batches included.
			Draws: func(n, d, k int) int { return 30 * k * (d + 1) },
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { optimtest.Run(t, tc.cfg) })
	}
}

// exclusiveSource counts calls that overlap another call, and calls made
// after closed is set; Normal sleeps so that its draw overlaps the gradient,
// and fails (panics) at its failAt-th call if failAt > 0.
type exclusiveSource struct {
	dp.Source
	inside, overlaps, late atomic.Int32
	calls                  atomic.Int32
	closed                 atomic.Bool
	failAt                 int32
}

func (s *exclusiveSource) enter() func() {
	if s.closed.Load() {
		s.late.Add(1)
	}
	if s.inside.Add(1) != 1 {
		s.overlaps.Add(1)
	}
	return func() { s.inside.Add(-1) }
}

func (s *exclusiveSource) Uint64() uint64 {
	defer s.enter()()
	return s.Source.Uint64()
}

func (s *exclusiveSource) Normal(dst []float64) {
	defer s.enter()()
	if c := s.calls.Add(1); c == s.failAt {
		panic("exclusiveSource: broken")
	}
	time.Sleep(200 * time.Microsecond)
	s.Source.Normal(dst)
}

// TestSGDSourceExclusive: however a run ends — normally, with a Source that
// panics, or cancelled — DP-SGD never uses its Source from two goroutines
// at once, nor after Solve has returned, with the noise drawn on a Team.
func TestSGDSourceExclusive(t *testing.T) {
	data := sgdProblem(2000, 20, 4, 5)
	for _, end := range []string{"normal", "panic", "cancel"} {
		for _, workers := range []int{2, 3, 8} {
			src := &exclusiveSource{Source: dp.NewSeededSource(1)}
			ctx, cancel := context.WithCancel(context.Background())
			switch end {
			case "panic":
				src.failAt = 7
			case "cancel":
				time.AfterFunc(2*time.Millisecond, cancel)
			}
			s := &optim.SGD{Privacy: optim.Privacy{Epsilon: 2, Delta: 1e-5, Accountant: accountant.RDP{}},
				Steps: 40, BatchSize: 300, GradClipNorm: 1, Workers: workers}
			func() {
				defer func() { _ = recover() }()
				_, _ = s.Solve(ctx, data, nil, src)
			}()
			src.closed.Store(true)
			cancel()
			time.Sleep(2 * time.Millisecond) // a straggler would draw now
			if o, l := src.overlaps.Load(), src.late.Load(); o != 0 || l != 0 {
				t.Errorf("%s, Workers %d: %d overlapping calls, %d calls after Solve returned", end, workers, o, l)
			}
		}
	}
}

// TestSGDReproducibleLargeBatch: Poisson batches too large for the fused
// pass (losses.FusedRows), whose randomness a helper goroutine draws during
// each step's gradient instead of a Team, give the bits of Workers 1 too.
func TestSGDReproducibleLargeBatch(t *testing.T) {
	const n, dim, k, batch = 1400, 3000, 30, 700
	if batch <= losses.FusedRows(dim, k) {
		t.Fatalf("batch %d fits the fused pass (%d rows): the test needs a larger one", batch, losses.FusedRows(dim, k))
	}
	data := sgdProblem(n, dim, k, 5)
	run := func(workers int) *optim.Result {
		s := &optim.SGD{Privacy: optim.Privacy{Epsilon: 2, Delta: 1e-5, Accountant: accountant.RDP{}},
			Steps: 6, BatchSize: batch, GradClipNorm: 0.5, Workers: workers}
		res, err := s.Solve(context.Background(), data, nil, dp.NewSeededSource(11))
		require.NoError(t, err)
		return res
	}
	a := run(1)
	for _, workers := range []int{2, 3} {
		if b := run(workers); !floats.Same(sgdFlat(a.Model), sgdFlat(b.Model)) {
			t.Errorf("Workers 1 and %d give different models for the same seed", workers)
		}
	}
}
