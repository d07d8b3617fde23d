package losses

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/linalg"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// lossCase is a loss together with whether the model has a trained bias.
type lossCase struct {
	name string
	loss Loss
	bias bool
}

var lossCases = []lossCase{
	{"softmax", Softmax{}, false},
	{"softmax/bias", Softmax{}, true},
	{"sigmoid", Sigmoid{}, false},
	{"sigmoid/bias", Sigmoid{}, true},
	{"sigmoid/alpha=0.3/fixed-bias", Sigmoid{NegWeight: 0.3, FixedBias: PaperFixedBias}, false},
	{"sigmoid/alpha=2.5/bias", Sigmoid{NegWeight: 2.5}, true},
	{"squared", Squared{}, false},
	{"squared/bias", Squared{}, true},
}

type problem struct {
	x      *linalg.Matrix32
	labels []int
	w      *mat.Dense
	bias   []float64 // nil when not trained
}

// newProblem draws features N(0, 1), weights N(0, scale²), a bias N(0, 1)
// when withBias, and uniform labels, from a fixed seed.
func newProblem(t testing.TB, seed uint64, n, d, k int, scale float64, withBias bool) problem {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 99))
	p := problem{x: linalg.NewMatrix32(n, d), labels: make([]int, n), w: mat.NewDense(k, d, nil)}
	for i := range p.x.Data {
		p.x.Data[i] = float32(rnd.NormFloat64())
	}
	for i := range p.labels {
		p.labels[i] = rnd.IntN(k)
	}
	for l := range k {
		for j := range d {
			p.w.Set(l, j, scale*rnd.NormFloat64())
		}
	}
	if withBias {
		p.bias = make([]float64, k)
		for l := range p.bias {
			p.bias[l] = rnd.NormFloat64()
		}
	}
	return p
}

func (p problem) eval(t testing.TB, l Loss, dst *Batch, workers int) {
	t.Helper()
	require.NoError(t, l.Eval(dst, p.x, p.labels, p.w, p.bias, workers))
}

func (p problem) grad(t testing.TB, l Loss) (*mat.Dense, []float64, *Batch) {
	t.Helper()
	var b Batch
	p.eval(t, l, &b, 1)
	var gw mat.Dense
	var gb []float64
	if p.bias != nil {
		gb = make([]float64, len(p.bias))
	}
	require.NoError(t, b.Grad(&gw, gb, 1))
	return &gw, gb, &b
}

// fdStep and fdTol: central differences have truncation error h²/6·|f”'|
// and rounding error ≈ ε·|f|/h. With h = 1e-4, |f| ≲ 100 on these problems
// (7 examples, K = 4) and |f”'| ≲ 7·Σ|x_j|³ ≲ 500, the two are ≈ 1e-6 and
// ≈ 2e-10; fdTol = 1e-5 (absolute, plus the same relative to the derivative)
// leaves a margin of ~10 while any wrong sign, missing factor or missing
// term (derivatives here are O(0.1–10)) is far outside it.
const (
	fdStep = 1e-4
	fdTol  = 1e-5
)

func fdClose(got, want float64) bool {
	return math.Abs(got-want) <= fdTol*(1+math.Abs(want))
}

// TestGradFiniteDifference checks ∇_W = RᵀX and ∇_b = Σ r_i against central
// differences of Loss, for every loss with and without a trained bias.
func TestGradFiniteDifference(t *testing.T) {
	const n, d, k = 7, 5, 4
	for _, tc := range lossCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProblem(t, 1, n, d, k, 0.7, tc.bias)
			gw, gb, _ := p.grad(t, tc.loss)
			f := func() float64 {
				var b Batch
				p.eval(t, tc.loss, &b, 1)
				return b.Loss
			}
			for l := range k {
				for j := range d {
					w0 := p.w.At(l, j)
					p.w.Set(l, j, w0+fdStep)
					fp := f()
					p.w.Set(l, j, w0-fdStep)
					fm := f()
					p.w.Set(l, j, w0)
					if want := (fp - fm) / (2 * fdStep); !fdClose(gw.At(l, j), want) {
						t.Errorf("∂/∂W(%d, %d): got %.8f, want %.8f", l, j, gw.At(l, j), want)
					}
				}
			}
			for l := range gb {
				b0 := p.bias[l]
				p.bias[l] = b0 + fdStep
				fp := f()
				p.bias[l] = b0 - fdStep
				fm := f()
				p.bias[l] = b0
				if want := (fp - fm) / (2 * fdStep); !fdClose(gb[l], want) {
					t.Errorf("∂/∂b(%d): got %.8f, want %.8f", l, gb[l], want)
				}
			}
		})
	}
}

// TestCurvatureFiniteDifference checks the curvature weights against central
// differences of the gradient: for every loss, the diagonal Hessian block of
// class l is Σ_i c_il x_i x_iᵀ (exact Hessian for sigmoid and squared, the
// diagonal blocks of it for softmax), so ∂(∇_W)(l, m)/∂W(l, j) must equal
// Σ_i c_il x_im x_ij. The tolerance is fdTol by the argument above, one
// derivative up.
func TestCurvatureFiniteDifference(t *testing.T) {
	const n, d, k = 7, 3, 4
	for _, tc := range lossCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProblem(t, 2, n, d, k, 0.7, tc.bias)
			_, _, b := p.grad(t, tc.loss)
			for l := range k {
				for j := range d {
					w0 := p.w.At(l, j)
					p.w.Set(l, j, w0+fdStep)
					gp, _, _ := p.grad(t, tc.loss)
					p.w.Set(l, j, w0-fdStep)
					gm, _, _ := p.grad(t, tc.loss)
					p.w.Set(l, j, w0)
					for m := range d {
						var want float64
						for i := range n {
							want += b.Curvature.At(i, l) * float64(p.x.Row(i)[m]) * float64(p.x.Row(i)[j])
						}
						if got := (gp.At(l, m) - gm.At(l, m)) / (2 * fdStep); !fdClose(want, got) {
							t.Errorf("H(class %d)(%d, %d): Σ c x xᵀ = %.8f, finite difference %.8f", l, m, j, want, got)
						}
					}
				}
			}
		})
	}
}

// perExample materialises each example's gradient (weights and bias) by
// evaluating the loss on that example alone.
func perExample(t *testing.T, p problem, l Loss) ([]*mat.Dense, [][]float64) {
	t.Helper()
	gws, gbs := make([]*mat.Dense, p.x.Rows), make([][]float64, p.x.Rows)
	for i := range p.x.Rows {
		one := problem{x: p.x.Slice(i, i+1), labels: p.labels[i : i+1], w: p.w, bias: p.bias}
		gws[i], gbs[i], _ = one.grad(t, l)
	}
	return gws, gbs
}

// exTol: a per-example gradient from a one-row Eval and the norm identity
// apply the same float64 operations in different orders to O(1) values with
// d ≤ 40 terms; 1e-12 relative is ~100× the rounding error.
const exTol = 1e-12

func TestNormsMatchPerExampleGradients(t *testing.T) {
	const n, d, k = 9, 40, 5
	for _, tc := range lossCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProblem(t, 3, n, d, k, 0.3, tc.bias)
			var b Batch
			p.eval(t, tc.loss, &b, 2)
			gws, gbs := perExample(t, p, tc.loss)
			for i := range n {
				ss := mat.Norm(gws[i], 2) // Frobenius
				ss *= ss
				for _, v := range gbs[i] {
					ss += v * v
				}
				if want := math.Sqrt(ss); math.Abs(b.Norms[i]-want) > exTol*want {
					t.Errorf("‖g_%d‖: got %.15g, want %.15g", i, b.Norms[i], want)
				}
			}
		})
	}
}

func TestClipSumMatchesNaive(t *testing.T) {
	const n, d, k = 11, 30, 4
	for _, tc := range lossCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProblem(t, 4, n, d, k, 0.5, tc.bias)
			gws, gbs := perExample(t, p, tc.loss)
			norms := make([]float64, n)
			for i := range n {
				ss := mat.Norm(gws[i], 2)
				ss *= ss
				for _, v := range gbs[i] {
					ss += v * v
				}
				norms[i] = math.Sqrt(ss)
			}
			sorted := append([]float64(nil), norms...)
			for i := range sorted { // insertion sort: n is tiny
				for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
					sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
				}
			}
			clip := sorted[n/2] // about half the examples are clipped
			wantW := mat.NewDense(k, d, nil)
			var wantB []float64
			if tc.bias {
				wantB = make([]float64, k)
			}
			clipped := 0
			for i := range n {
				c := min(1, clip/norms[i])
				if c < 1 {
					clipped++
				}
				var g mat.Dense
				g.Scale(c, gws[i])
				wantW.Add(wantW, &g)
				for l := range wantB {
					wantB[l] += c * gbs[i][l]
				}
			}
			require.Greater(t, clipped, 2, "test should clip several examples")
			require.Less(t, clipped, n-2, "test should leave several examples unclipped")

			var b Batch
			p.eval(t, tc.loss, &b, 2)
			gotW := mat.NewDense(k, d, nil)
			var gotB []float64
			if tc.bias {
				gotB = make([]float64, k)
			}
			require.NoError(t, b.ClipSum(gotW, gotB, clip, 2))
			// Sums of n ≤ 11 clipped terms, each of norm ≤ clip: rounding is
			// ≲ n·d·ε·clip, so 1e-12·clip·n is a safe absolute tolerance.
			tol := 1e-12 * clip * n
			if !mat.EqualApprox(gotW, wantW, tol) {
				t.Errorf("clipped weight gradient:\ngot  %v\nwant %v", mat.Formatted(gotW), mat.Formatted(wantW))
			}
			for l := range wantB {
				if math.Abs(gotB[l]-wantB[l]) > tol {
					t.Errorf("clipped bias gradient[%d]: got %v, want %v", l, gotB[l], wantB[l])
				}
			}
			for i, f := range b.Factors {
				if want := min(1, clip/norms[i]); math.Abs(f-want) > exTol {
					t.Errorf("factor %d: got %v, want %v", i, f, want)
				}
			}
		})
	}
}

// TestExtremeScores evaluates one example per row with scores ±800 and 0,
// where exp overflows, against the losses written out by hand.
func TestExtremeScores(t *testing.T) {
	// d = 1, x = 1: the scores are the column of W.
	scores := []float64{800, -800, 0}
	w := mat.NewDense(3, 1, scores)
	x := &linalg.Matrix32{Rows: 3, Cols: 1, Data: []float32{1, 1, 1}}
	labels := []int{0, 1, 2}
	ln2 := math.Log(2)
	tests := []struct {
		name string
		loss Loss
		want []float64 // per-example loss, label 0, 1, 2
	}{
		// log Σ exp(s) = 800 + log(1 + e⁻⁸⁰⁰ + e⁻¹⁶⁰⁰) = 800 in float64.
		{"softmax", Softmax{}, []float64{0, 1600, 800}},
		// softplus(−800) = 0, softplus(800) = 800, softplus(0) = log 2.
		{"sigmoid", Sigmoid{}, []float64{0 + 0 + ln2, 800 + 800 + ln2, 800 + 0 + ln2}},
		{"sigmoid/alpha=0.5", Sigmoid{NegWeight: 0.5}, []float64{0 + 0 + 0.5*ln2, 0.5*800 + 800 + 0.5*ln2, 0.5*800 + 0 + ln2}},
		{"squared", Squared{}, []float64{0.5 * (799*799 + 800*800), 0.5 * (800*800 + 801*801), 0.5 * (800*800 + 800*800 + 1)}},
	}
	// Each value is a sum of terms computed with relative error ~ε.
	const tol = 1e-14
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var total float64
			var b Batch
			for i := range labels {
				require.NoError(t, tc.loss.Eval(&b, x.Slice(i, i+1), labels[i:i+1], w, nil, 1))
				if math.Abs(b.Loss-tc.want[i]) > tol*(1+tc.want[i]) {
					t.Errorf("label %d: loss = %v, want %v", labels[i], b.Loss, tc.want[i])
				}
				for _, m := range []*mat.Dense{b.R, b.Curvature} {
					for l := range 3 {
						if v := m.At(0, l); math.IsNaN(v) || math.IsInf(v, 0) {
							t.Errorf("label %d: non-finite residual or curvature %v", labels[i], v)
						}
					}
				}
				total += tc.want[i]
			}
			require.NoError(t, tc.loss.Eval(&b, x, labels, w, nil, 1))
			if math.Abs(b.Loss-total) > tol*(1+total) {
				t.Errorf("summed loss = %v, want %v", b.Loss, total)
			}
		})
	}
}

// TestResidualsExact pins the residuals and curvatures at the extreme scores
// (an ε-level error in any formula shows here, unlike in the finite
// differences).
func TestResidualsExact(t *testing.T) {
	w := mat.NewDense(3, 1, []float64{800, -800, 0})
	x := &linalg.Matrix32{Rows: 1, Cols: 1, Data: []float32{1}}
	tests := []struct {
		name         string
		loss         Loss
		label        int
		wantR, wantC []float64
	}{
		{"softmax/right", Softmax{}, 0, []float64{0, 0, 0}, []float64{0, 0, 0}},
		{"softmax/wrong", Softmax{}, 1, []float64{1, -1, 0}, []float64{0, 0, 0}},
		{"sigmoid/right", Sigmoid{NegWeight: 0.5}, 0, []float64{0, 0, 0.25}, []float64{0, 0, 0.125}},
		{"sigmoid/wrong", Sigmoid{NegWeight: 0.5}, 1, []float64{0.5, -1, 0.25}, []float64{0, 0, 0.125}},
		{"squared", Squared{}, 2, []float64{800, -800, -1}, []float64{1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b Batch
			require.NoError(t, tc.loss.Eval(&b, x, []int{tc.label}, w, nil, 1))
			for l := range 3 {
				if got := b.R.At(0, l); got != tc.wantR[l] {
					t.Errorf("r[%d] = %v, want %v", l, got, tc.wantR[l])
				}
				if got := b.Curvature.At(0, l); got != tc.wantC[l] {
					t.Errorf("curvature[%d] = %v, want %v", l, got, tc.wantC[l])
				}
			}
		})
	}
}

func TestSoftmaxSmallLossAccurate(t *testing.T) {
	// Scores (40, 0): loss = log(1 + e⁻⁴⁰) ≈ 4.248e-18, lost entirely by
	// log(Σ exp) − s_y in float64 but kept by log1p.
	w := mat.NewDense(2, 1, []float64{40, 0})
	x := &linalg.Matrix32{Rows: 1, Cols: 1, Data: []float32{1}}
	var b Batch
	require.NoError(t, Softmax{}.Eval(&b, x, []int{0}, w, nil, 1))
	want := math.Exp(-40) // log1p(u) = u to within u²
	if math.Abs(b.Loss-want) > 1e-15*want {
		t.Errorf("loss = %g, want %g", b.Loss, want)
	}
	if r := b.R.At(0, 0); math.Abs(r+want) > 1e-15*want {
		t.Errorf("r_y = %g, want %g", r, -want)
	}
}

func TestWorkersBitIdentical(t *testing.T) {
	const n, d, k = 3*chunkRows + 77, 33, 6
	for _, tc := range lossCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProblem(t, 5, n, d, k, 0.2, tc.bias)
			type out struct {
				loss    float64
				r, c, g *mat.Dense
				norms   []float64
				gb      []float64
			}
			var ref *out
			for _, workers := range []int{1, 2, 3, 0} {
				var b Batch
				p.eval(t, tc.loss, &b, workers)
				o := &out{loss: b.Loss, r: mat.DenseCopyOf(b.R), c: mat.DenseCopyOf(b.Curvature), norms: append([]float64(nil), b.Norms...), g: &mat.Dense{}}
				if tc.bias {
					o.gb = make([]float64, k)
				}
				require.NoError(t, b.ClipSum(o.g, o.gb, 1, workers))
				if ref == nil {
					ref = o
					continue
				}
				if o.loss != ref.loss || !mat.Equal(o.r, ref.r) || !mat.Equal(o.c, ref.c) || !mat.Equal(o.g, ref.g) {
					t.Errorf("workers=%d: results differ bitwise from workers=1", workers)
				}
				require.Equal(t, ref.norms, o.norms, "norms, workers=%d", workers)
				require.Equal(t, ref.gb, o.gb, "bias gradient, workers=%d", workers)
			}
		})
	}
}

// TestBatchReuse evaluates blocks of changing size through one Batch and
// compares each with a fresh Batch.
func TestBatchReuse(t *testing.T) {
	var b Batch
	var rData *float64
	for step, n := range []int{700, 300, 700, 700} {
		p := newProblem(t, uint64(10+step), n, 8, 3, 0.5, true)
		p.eval(t, Sigmoid{}, &b, 2)
		var fresh Batch
		p.eval(t, Sigmoid{}, &fresh, 2)
		if b.Loss != fresh.Loss || !mat.Equal(b.R, fresh.R) || !mat.Equal(b.Curvature, fresh.Curvature) {
			t.Errorf("step %d (n=%d): reused Batch differs from a fresh one", step, n)
		}
		require.Equal(t, fresh.Norms, b.Norms)
		if step == 3 && &b.R.RawMatrix().Data[0] != rData {
			t.Error("same shape twice: R storage was not reused")
		}
		rData = &b.R.RawMatrix().Data[0]
	}
}

// TestNoCurvature checks that Batch.NoCurvature leaves Curvature nil and
// changes nothing else, bit for bit, for every loss, and that the next Eval
// without it fills Curvature again.
func TestNoCurvature(t *testing.T) {
	const n, d, k = 2*chunkRows + 13, 17, 5
	for _, tc := range lossCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProblem(t, 21, n, d, k, 0.3, tc.bias)
			var full, lean Batch
			lean.NoCurvature = true
			p.eval(t, tc.loss, &full, 2)
			p.eval(t, tc.loss, &lean, 3)
			if lean.Curvature != nil {
				t.Fatal("NoCurvature: Curvature is not nil")
			}
			if lean.Loss != full.Loss || !mat.Equal(lean.R, full.R) {
				t.Error("NoCurvature changed the loss or the residuals")
			}
			require.Equal(t, full.Norms, lean.Norms)
			g1, g2 := &mat.Dense{}, &mat.Dense{}
			var b1, b2 []float64
			if tc.bias {
				b1, b2 = make([]float64, k), make([]float64, k)
			}
			require.NoError(t, full.ClipSum(g1, b1, 0.5, 1))
			require.NoError(t, lean.ClipSum(g2, b2, 0.5, 1))
			if !mat.Equal(g1, g2) {
				t.Error("NoCurvature changed the clipped gradient")
			}
			require.Equal(t, b1, b2)
			lean.NoCurvature = false
			p.eval(t, tc.loss, &lean, 1)
			if lean.Curvature == nil || !mat.Equal(lean.Curvature, full.Curvature) {
				t.Error("Eval after NoCurvature was cleared: Curvature missing or different")
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	const n, d, k = 6, 4, 3
	good := newProblem(t, 6, n, d, k, 1, true)
	mod := func(f func(p *problem)) problem {
		p := newProblem(t, 6, n, d, k, 1, true)
		f(&p)
		return p
	}
	tests := []struct {
		name    string
		loss    Loss
		p       problem
		nilDst  bool
		workers int
		want    error // nil: want an *accountant.ParamError
	}{
		{name: "label -1", p: mod(func(p *problem) { p.labels[2] = -1 }), want: linalg.ErrLabel},
		{name: "label K", p: mod(func(p *problem) { p.labels[5] = k }), want: linalg.ErrLabel},
		{name: "K=1", p: mod(func(p *problem) { p.w = mat.NewDense(1, d, nil); p.bias = p.bias[:1]; clear(p.labels) }), want: linalg.ErrShape},
		{name: "W columns", p: mod(func(p *problem) { p.w = mat.NewDense(k, d+1, nil) }), want: linalg.ErrShape},
		{name: "nil W", p: mod(func(p *problem) { p.w = nil }), want: linalg.ErrEmpty},
		{name: "labels length", p: mod(func(p *problem) { p.labels = p.labels[:n-1] }), want: linalg.ErrShape},
		{name: "bias length", p: mod(func(p *problem) { p.bias = p.bias[:k-1] }), want: linalg.ErrShape},
		{name: "X data length", p: mod(func(p *problem) { p.x.Data = p.x.Data[:n*d-1] }), want: linalg.ErrShape},
		{name: "empty X", p: mod(func(p *problem) { p.x = &linalg.Matrix32{Cols: d} }), want: linalg.ErrEmpty},
		{name: "NaN W", p: mod(func(p *problem) { p.w.Set(1, 2, math.NaN()) }), want: linalg.ErrNonFinite},
		{name: "Inf W", p: mod(func(p *problem) { p.w.Set(0, 0, math.Inf(1)) }), want: linalg.ErrNonFinite},
		{name: "NaN X", p: mod(func(p *problem) { p.x.Data[7] = float32(math.NaN()) }), want: linalg.ErrNonFinite},
		{name: "NaN bias", p: mod(func(p *problem) { p.bias[1] = math.NaN() }), want: linalg.ErrNonFinite},
		{name: "score overflow", p: mod(func(p *problem) { p.w.Set(0, 0, 1e300); p.x.Data[0] = 1e30 }), want: linalg.ErrNonFinite},
		{name: "squared loss overflow", loss: Squared{}, p: mod(func(p *problem) { p.w.Set(0, 0, 1e200); p.x.Data[0] = 1 }), want: linalg.ErrNonFinite},
		{name: "nil dst", p: good, nilDst: true},
		{name: "negative workers", p: good, workers: -1},
		{name: "negative NegWeight", loss: Sigmoid{NegWeight: -1}, p: good},
		{name: "NaN NegWeight", loss: Sigmoid{NegWeight: math.NaN()}, p: good},
		{name: "FixedBias with trained bias", loss: Sigmoid{FixedBias: -10}, p: good},
		{name: "Inf FixedBias", loss: Sigmoid{FixedBias: math.Inf(-1)}, p: mod(func(p *problem) { p.bias = nil })},
	}
	for _, tc := range tests {
		losses := []Loss{Softmax{}, Sigmoid{}, Squared{}}
		if tc.loss != nil {
			losses = []Loss{tc.loss}
		}
		for _, l := range losses {
			t.Run(tc.name+"/"+l.Name(), func(t *testing.T) {
				dst := &Batch{}
				if tc.nilDst {
					dst = nil
				}
				err := l.Eval(dst, tc.p.x, tc.p.labels, tc.p.w, tc.p.bias, tc.workers)
				checkErr(t, err, tc.want)
			})
		}
	}
}

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatal("got nil error")
	case want != nil && !errors.Is(err, want):
		t.Errorf("got %v, want an error wrapping %v", err, want)
	case want == nil && !errors.As(err, new(*accountant.ParamError)):
		t.Errorf("got %v, want an *accountant.ParamError", err)
	}
	if len(err.Error()) < 8 || err.Error()[:8] != "losses: " {
		t.Errorf("error %q lacks the \"losses: \" prefix", err)
	}
}

func TestGradAndClipSumErrors(t *testing.T) {
	const n, d, k = 6, 4, 3
	withBias := newProblem(t, 7, n, d, k, 1, true)
	noBias := newProblem(t, 7, n, d, k, 1, false)
	var bb, nb Batch
	withBias.eval(t, Softmax{}, &bb, 1)
	noBias.eval(t, Softmax{}, &nb, 1)
	var failed Batch
	withBias.eval(t, Softmax{}, &failed, 1)
	require.Error(t, Softmax{}.Eval(&failed, withBias.x, withBias.labels, withBias.w, []float64{1}, 1))
	tests := []struct {
		name string
		b    *Batch
		gw   *mat.Dense
		gb   []float64
		clip float64
		want error
		grad bool // also check Grad
	}{
		{"before Eval", &Batch{}, &mat.Dense{}, nil, 1, linalg.ErrEmpty, true},
		{"after failed Eval", &failed, &mat.Dense{}, make([]float64, k), 1, linalg.ErrEmpty, true},
		{"gradW shape", &nb, mat.NewDense(k, d+1, nil), nil, 1, linalg.ErrShape, true},
		{"nil gradW", &nb, nil, nil, 1, linalg.ErrEmpty, true},
		{"missing bias gradient", &bb, &mat.Dense{}, nil, 1, linalg.ErrShape, true},
		{"bias gradient length", &bb, &mat.Dense{}, make([]float64, k+1), 1, linalg.ErrShape, true},
		{"bias gradient without bias", &nb, &mat.Dense{}, make([]float64, k), 1, linalg.ErrShape, true},
		{"clip 0", &nb, &mat.Dense{}, nil, 0, nil, false},
		{"clip -1", &nb, &mat.Dense{}, nil, -1, nil, false},
		{"clip NaN", &nb, &mat.Dense{}, nil, math.NaN(), nil, false},
		{"clip Inf", &nb, &mat.Dense{}, nil, math.Inf(1), nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, tc.b.ClipSum(tc.gw, tc.gb, tc.clip, 1), tc.want)
			if tc.grad {
				checkErr(t, tc.b.Grad(tc.gw, tc.gb, 1), tc.want)
			}
		})
	}
	t.Run("negative workers", func(t *testing.T) {
		checkErr(t, nb.ClipSum(&mat.Dense{}, nil, 1, -1), nil)
		checkErr(t, nb.Grad(&mat.Dense{}, nil, -1), nil)
	})
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		l    Loss
		want string
	}{{Softmax{}, "softmax"}, {Sigmoid{}, "sigmoid"}, {Squared{}, "squared"}} {
		if got := tc.l.Name(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestFloat32Precision evaluates every loss with Precision Float32 and checks
// it against Float64 within the float32 error bound of the GEMMs: scores are
// sums of d products of rounded float32 values (relative error ≲ (d+2)·2⁻²⁴
// of Σ|x_j w_j|, here ≲ 1e-5 of the score scale), gradients sums of n
// products in 256-row float32 blocks. Float32 must also stay bit-identical
// across workers, and an unknown precision must be refused.
func TestFloat32Precision(t *testing.T) {
	const n, d, k = 2*chunkRows + 41, 57, 5
	for _, tc := range lossCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProblem(t, 8, n, d, k, 0.1, tc.bias)
			run := func(prec linalg.Precision, workers int) (*Batch, *mat.Dense, []float64) {
				b := &Batch{Precision: prec}
				p.eval(t, tc.loss, b, workers)
				var g mat.Dense
				var gb []float64
				if tc.bias {
					gb = make([]float64, k)
				}
				require.NoError(t, b.ClipSum(&g, gb, 1, workers))
				return b, &g, gb
			}
			b64, g64, gb64 := run(linalg.Float64, 1)
			b32, g32, gb32 := run(linalg.Float32, 1)
			// Scores enter the residuals through smooth functions with slopes
			// ≤ 1 (sigmoid, softmax) or 1 (squared): compare the residuals
			// to 1e-5 of their scale, and the clipped gradients to 1e-5 of
			// theirs.
			maxDiff := func(a, b *mat.Dense) (diff, scale float64) {
				var dd mat.Dense
				dd.Sub(a, b)
				return mat.Norm(&dd, math.Inf(1)), mat.Norm(b, math.Inf(1))
			}
			if e, s := maxDiff(b32.R, b64.R); !(e <= 1e-5*s) {
				t.Errorf("residuals: max |float32 − float64| = %g, scale %g", e, s)
			}
			if e, s := maxDiff(g32, g64); !(e <= 1e-5*s) {
				t.Errorf("clipped gradient: max |float32 − float64| = %g, scale %g", e, s)
			}
			if e, s := maxDiff(g32, g64); e == 0 && s > 0 {
				t.Error("float32 gradient equals the float64 one bit for bit: Precision not applied?")
			}
			require.InDeltaSlice(t, b64.XNorms, b32.XNorms, 1e-12*float64(d), "row norms are float64 in both")
			for l := range gb64 {
				require.InDelta(t, gb64[l], gb32[l], 1e-5*(1+math.Abs(gb64[l])), "bias gradient %d", l)
			}
			b2, g2, _ := run(linalg.Float32, 3)
			if !mat.Equal(b2.R, b32.R) || !mat.Equal(g2, g32) || b2.Loss != b32.Loss {
				t.Error("Float32: results differ between workers 1 and 3")
			}
		})
	}
	p := newProblem(t, 8, 10, 4, 3, 0.1, false)
	err := Softmax{}.Eval(&Batch{Precision: 7}, p.x, p.labels, p.w, nil, 1)
	checkErr(t, err, linalg.ErrParam)
}

// TestLog1pSmall compares the series of log1pSmall with math.Log1p (itself
// within 1 ulp) on a logarithmic grid below 2⁻¹² and at its edge: within
// 4 ulps (4·2⁻⁵³ relative), and exactly math.Log1p from 2⁻¹² up.
func TestLog1pSmall(t *testing.T) {
	for e := 0x1p-12; e > 1e-300; e *= 0.987 {
		got, want := log1pSmall(math.Nextafter(e, 0)), math.Log1p(math.Nextafter(e, 0))
		if math.Abs(got-want) > 4*0x1p-53*want {
			t.Fatalf("log1pSmall(%g) = %v, math.Log1p %v: %g relative", e, got, want, (got-want)/want)
		}
	}
	for _, e := range []float64{0, 0x1p-12, 0.01, 0.5, 1} {
		if got, want := log1pSmall(e), math.Log1p(e); got != want {
			t.Errorf("log1pSmall(%g) = %v, want math.Log1p's %v", e, got, want)
		}
	}
}
