package losses

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dpopt/dpopt/linalg"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// evalClipSumOut is what EvalClipSum leaves in a Batch and the gradients.
type evalClipSumOut struct {
	loss                          float64
	r, c, g                       *mat.Dense
	norms, xnorms, factors, gradB []float64
}

func runEvalClipSum(t *testing.T, l Loss, p problem, rows []int, clip float64, workers int, b *Batch) evalClipSumOut {
	t.Helper()
	k, _ := p.w.Dims()
	o := evalClipSumOut{g: &mat.Dense{}}
	if p.bias != nil {
		o.gradB = make([]float64, k)
	}
	require.NoError(t, EvalClipSum(b, l, p.x, p.labels, rows, p.w, p.bias, clip, o.g, o.gradB, workers))
	o.loss, o.r, o.c = b.Loss, mat.DenseCopyOf(b.R), mat.DenseCopyOf(b.Curvature)
	o.norms = append([]float64(nil), b.Norms...)
	o.xnorms = append([]float64(nil), b.XNorms...)
	o.factors = append([]float64(nil), b.Factors...)
	return o
}

// gatherEval is the reference: the selected rows gathered into a block,
// Eval, then ClipSum, in Float64.
func gatherEval(t *testing.T, l Loss, p problem, rows []int, clip float64) evalClipSumOut {
	t.Helper()
	return gatherEvalPrecision(t, l, p, rows, clip, linalg.Float64)
}

// gatherEvalPrecision is gatherEval in precision prec.
func gatherEvalPrecision(t *testing.T, l Loss, p problem, rows []int, clip float64, prec linalg.Precision) evalClipSumOut {
	t.Helper()
	_, d := p.w.Dims()
	xb := linalg.NewMatrix32(len(rows), d)
	yb := make([]int, len(rows))
	for j, i := range rows {
		copy(xb.Row(j), p.x.Row(i))
		yb[j] = p.labels[i]
	}
	b := Batch{Precision: prec}
	require.NoError(t, l.Eval(&b, xb, yb, p.w, p.bias, 2))
	o := evalClipSumOut{g: &mat.Dense{}, loss: b.Loss, r: mat.DenseCopyOf(b.R), c: mat.DenseCopyOf(b.Curvature),
		norms: append([]float64(nil), b.Norms...), xnorms: append([]float64(nil), b.XNorms...)}
	if p.bias != nil {
		o.gradB = make([]float64, len(p.bias))
	}
	require.NoError(t, b.ClipSum(o.g, o.gradB, clip, 2))
	o.factors = append([]float64(nil), b.Factors...)
	return o
}

// randomRows draws m indices in [0, n), with repeats, from a fixed seed.
func randomRows(seed uint64, m, n int) []int {
	rnd := rand.New(rand.NewPCG(seed, 7))
	rows := make([]int, m)
	for j := range rows {
		rows[j] = rnd.IntN(n)
	}
	return rows
}

// TestEvalClipSumFusedMatchesGeneral compares the fused path with gathering
// the rows and calling Eval and ClipSum in the same precision, for every
// loss and both precisions, with K below and above one 12-class (Float64)
// and 16-class (Float32) panel, d not a multiple of 4 or 6 and selections
// that end inside a tile, a 32-row block and a 64-row segment.
func TestEvalClipSumFusedMatchesGeneral(t *testing.T) {
	shapes := []struct{ n, d, k, m int }{
		{50, 13, 3, 1},
		{300, 37, 10, 203},
		{200, 270, 14, 70},
		{400, 16, 27, 129},
	}
	for _, prec := range []linalg.Precision{linalg.Float64, linalg.Float32} {
		for _, tc := range lossCases {
			for _, s := range shapes {
				t.Run(fmt.Sprintf("%v/%s/d=%d/K=%d/m=%d", prec, tc.name, s.d, s.k, s.m), func(t *testing.T) {
					p := newProblem(t, 21, s.n, s.d, s.k, 0.3/math.Sqrt(float64(s.d)), tc.bias)
					rows := randomRows(uint64(s.m), s.m, s.n)
					var probe Batch
					require.NoError(t, tc.loss.Eval(&probe, p.x, p.labels, p.w, p.bias, 1))
					clip := median(probe.Norms) // about half the examples are clipped
					want := gatherEvalPrecision(t, tc.loss, p, rows, clip, prec)
					b := Batch{Precision: prec}
					got := runEvalClipSum(t, tc.loss, p, rows, clip, 1, &b)
					// Everything before the gradient GEMM is computed by the
					// same operations in the same order as Eval: bit for bit.
					require.Equal(t, want.loss, got.loss, "loss")
					require.True(t, mat.Equal(want.r, got.r), "R")
					require.True(t, mat.Equal(want.c, got.c), "Curvature")
					require.Equal(t, want.norms, got.norms, "Norms")
					require.Equal(t, want.xnorms, got.xnorms, "XNorms")
					require.Equal(t, want.factors, got.factors, "Factors")
					require.Equal(t, want.gradB, got.gradB, "bias gradient")
					// The gradient sums the same m products, grouped by 32
					// and 64 rows instead of 256, and Σ_j |c_j r_jl x_jf| ≤
					// Σ_j ‖c_j g_j‖ ≤ m·clip. Float64: each entry's rounding
					// is ≲ m·2⁻⁵³ of that; 1e-13·m·clip·max|x| allows ×100.
					// Float32: ClipSum's is at most 258·2⁻²⁴ of it (256-row
					// blocks), the fused path's 34·2⁻²⁴ (32-row blocks): the
					// tolerance is their sum, 292·2⁻²⁴·m·clip.
					tol := 1e-13 * float64(s.m) * clip * maxAbs32(p.x.Data)
					if prec == linalg.Float32 {
						tol = 292 * 0x1p-24 * float64(s.m) * clip
					}
					require.True(t, mat.EqualApprox(want.g, got.g, tol), "gradient differs by more than %g", tol)
				})
			}
		}
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s { // insertion sort: small inputs
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

func maxAbs32(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = max(m, math.Abs(float64(v)))
	}
	return m
}

// TestEvalClipSumWorkersBitIdentical: the fused path spreads 64-row segments
// over the workers; every output is the same bits for any count, in both
// precisions.
func TestEvalClipSumWorkersBitIdentical(t *testing.T) {
	const n, d, k, m = 1000, 45, 11, 333
	for _, prec := range []linalg.Precision{linalg.Float64, linalg.Float32} {
		for _, tc := range lossCases {
			t.Run(fmt.Sprintf("%v/%s", prec, tc.name), func(t *testing.T) {
				p := newProblem(t, 22, n, d, k, 0.05, tc.bias)
				rows := randomRows(3, m, n)
				b := Batch{Precision: prec}
				ref := runEvalClipSum(t, tc.loss, p, rows, 0.5, 1, &b)
				for _, workers := range []int{2, 3, 7, 0} {
					got := runEvalClipSum(t, tc.loss, p, rows, 0.5, workers, &b)
					require.Equal(t, ref, got, "workers=%d", workers)
				}
			})
		}
	}
}

// TestEvalClipSumAllRows: a nil selection is every row in order, the same as
// listing them.
func TestEvalClipSumAllRows(t *testing.T) {
	p := newProblem(t, 23, 150, 20, 4, 0.1, true)
	all := make([]int, 150)
	for i := range all {
		all[i] = i
	}
	var b Batch
	want := runEvalClipSum(t, Softmax{}, p, all, 0.7, 2, &b)
	got := runEvalClipSum(t, Softmax{}, p, nil, 0.7, 2, &b)
	require.Equal(t, want, got)
}

// otherLoss is a Loss from outside the package: EvalClipSum must gather the
// rows and call its Eval.
type otherLoss struct{ Softmax }

func (otherLoss) Name() string { return "other" }

// TestEvalClipSumGeneralPath checks the paths that gather the rows and call
// Eval and ClipSum — a Loss from outside the package, a selection above the
// fused path's scratch bound, a pointer loss — against the reference.
func TestEvalClipSumGeneralPath(t *testing.T) {
	p := newProblem(t, 24, 300, 12, 5, 0.2, false)
	rows := randomRows(5, 120, 300)
	want := gatherEval(t, Softmax{}, p, rows, 0.6)
	var b Batch
	got := runEvalClipSum(t, otherLoss{}, p, rows, 0.6, 2, &b)
	require.Equal(t, want, got, "otherLoss")
	got = runEvalClipSum(t, &Softmax{}, p, rows, 0.6, 2, &b)
	require.Equal(t, want.r, got.r, "*Softmax")

	// d·K large enough that 200 rows exceed fusedMaxScratch.
	const d, k = 2000, 130
	require.Greater(t, linalg.ScoreGradScratch(200, d, k), fusedMaxScratch)
	big := newProblem(t, 25, 300, d, k, 0.01, true)
	rows = randomRows(6, 200, 300)
	want = gatherEval(t, Sigmoid{}, big, rows, 0.6)
	got = runEvalClipSum(t, Sigmoid{}, big, rows, 0.6, 2, &b)
	require.Equal(t, want, got, "above the scratch bound")
}

// TestEvalClipSumReuse: a Batch kept across steps of changing batch sizes
// gives what a fresh one gives, and a repeated step allocates nothing, in
// both precisions.
func TestEvalClipSumReuse(t *testing.T) {
	p := newProblem(t, 26, 2000, 64, 10, 0.05, false)
	var loss Loss = Sigmoid{FixedBias: PaperFixedBias} // boxed once, as a solver holds it
	for _, prec := range []linalg.Precision{linalg.Float64, linalg.Float32} {
		b := Batch{Precision: prec}
		for step, m := range []int{260, 240, 300, 255} {
			rows := randomRows(uint64(step), m, 2000)
			got := runEvalClipSum(t, loss, p, rows, 1, 2, &b)
			fresh := Batch{Precision: prec}
			want := runEvalClipSum(t, loss, p, rows, 1, 2, &fresh)
			require.Equal(t, want, got, "%v: step %d", prec, step)
		}
		rows := randomRows(9, 256, 2000)
		g := mat.NewDense(10, 64, nil)
		require.NoError(t, EvalClipSum(&b, loss, p.x, p.labels, rows, p.w, nil, 1, g, nil, 1))
		allocs := testing.AllocsPerRun(10, func() {
			if err := EvalClipSum(&b, loss, p.x, p.labels, rows, p.w, nil, 1, g, nil, 1); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 0 {
			t.Errorf("%v: a repeated single-worker step allocates %v times, want 0", prec, allocs)
		}
	}
}

func TestEvalClipSumErrors(t *testing.T) {
	const n, d, k = 40, 6, 3
	good := newProblem(t, 27, n, d, k, 1, true)
	mod := func(f func(p *problem)) problem {
		p := newProblem(t, 27, n, d, k, 1, true)
		f(&p)
		return p
	}
	rows := []int{3, 1, 4, 1, 5, 9, 2, 6}
	tests := []struct {
		name    string
		loss    Loss
		p       problem
		rows    []int
		clip    float64
		gb      []float64
		nilDst  bool
		workers int
		want    error // nil: want an *accountant.ParamError
	}{
		{name: "row -1", p: good, rows: []int{0, -1}, want: linalg.ErrShape},
		{name: "row n", p: good, rows: []int{n}, want: linalg.ErrShape},
		{name: "empty selection", p: good, rows: []int{}, want: linalg.ErrEmpty},
		{name: "selected label K", p: mod(func(p *problem) { p.labels[4] = k }), want: linalg.ErrLabel},
		{name: "labels length", p: mod(func(p *problem) { p.labels = p.labels[:n-1] }), want: linalg.ErrShape},
		{name: "NaN in a selected row", p: mod(func(p *problem) { p.x.Data[5*d+2] = float32(math.NaN()) }), want: linalg.ErrNonFinite},
		{name: "Inf W", p: mod(func(p *problem) { p.w.Set(1, 1, math.Inf(1)) }), want: linalg.ErrNonFinite},
		{name: "score overflow", p: mod(func(p *problem) { p.w.Set(0, 0, 1e300); p.x.Data[3*d] = 1e30 }), want: linalg.ErrNonFinite},
		{name: "W columns", p: mod(func(p *problem) { p.w = mat.NewDense(k, d+1, nil) }), want: linalg.ErrShape},
		{name: "bias gradient missing", p: good, gb: []float64{}, want: linalg.ErrShape},
		{name: "clip 0", p: good, clip: -1},
		{name: "clip NaN", p: good, clip: math.NaN()},
		{name: "nil dst", p: good, nilDst: true},
		{name: "negative workers", p: good, workers: -1},
		{name: "FixedBias with trained bias", loss: Sigmoid{FixedBias: -10}, p: good},
		{name: "nil *Sigmoid", loss: (*Sigmoid)(nil), p: good},
	}
	for _, tc := range tests {
		losses := []Loss{Softmax{}, Sigmoid{}, Squared{}, otherLoss{}}
		if tc.loss != nil {
			losses = []Loss{tc.loss}
		}
		for _, l := range losses {
			t.Run(fmt.Sprintf("%s/%T", tc.name, l), func(t *testing.T) {
				dst := &Batch{}
				if tc.nilDst {
					dst = nil
				}
				sel := rows
				if tc.rows != nil {
					sel = tc.rows
				}
				clip := 1.0
				if tc.clip != 0 {
					clip = tc.clip
				}
				gb := make([]float64, k)
				if tc.gb != nil {
					gb = tc.gb
				}
				err := EvalClipSum(dst, l, tc.p.x, tc.p.labels, sel, tc.p.w, tc.p.bias, clip, &mat.Dense{}, gb, tc.workers)
				checkErr(t, err, tc.want)
				if dst != nil {
					checkErr(t, dst.ClipSum(&mat.Dense{}, gb, 1, 1), linalg.ErrEmpty)
				}
			})
		}
	}
	t.Run("nil loss", func(t *testing.T) {
		checkErr(t, EvalClipSum(&Batch{}, nil, good.x, good.labels, rows, good.w, good.bias, 1, &mat.Dense{}, make([]float64, k), 1), nil)
	})
}

// TestEvalClipSumNoCurvature checks that EvalClipSum honours
// Batch.NoCurvature on both paths (fused: a small selection; general: a
// selection past the fused path's scratch bound), changing nothing else.
func TestEvalClipSumNoCurvature(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n, d, k int
		m       int
	}{{"fused", 300, 20, 5, 50}, {"general", 200, 784, 10, 8000}} {
		require.Equal(t, tc.name == "fused", scoreGradFits(tc.m, tc.d, tc.k), tc.name)
		for _, lc := range lossCases {
			t.Run(tc.name+"/"+lc.name, func(t *testing.T) {
				p := newProblem(t, 31, tc.n, tc.d, tc.k, 0.2, lc.bias)
				rows := randomRows(5, tc.m, tc.n)
				full := runEvalClipSum(t, lc.loss, p, rows, 0.7, 2, &Batch{})
				lean := Batch{NoCurvature: true}
				g := &mat.Dense{}
				var gb []float64
				if lc.bias {
					gb = make([]float64, tc.k)
				}
				require.NoError(t, EvalClipSum(&lean, lc.loss, p.x, p.labels, rows, p.w, p.bias, 0.7, g, gb, 2))
				if lean.Curvature != nil {
					t.Fatal("NoCurvature: Curvature is not nil")
				}
				if lean.Loss != full.loss || !mat.Equal(lean.R, full.r) || !mat.Equal(g, full.g) {
					t.Error("NoCurvature changed the loss, the residuals or the gradient")
				}
				require.Equal(t, full.gradB, gb)
				require.Equal(t, full.factors, lean.Factors)
			})
		}
	}
}

// scoreGradFits reports whether a selection of m rows takes the fused
// path at d features and k classes.
func scoreGradFits(m, d, k int) bool {
	return linalg.ScoreGradScratch(m, d, k) <= fusedMaxScratch
}

// TestFloat32ClipBound checks that in Float32 every clipped per-example
// gradient, as computed, has norm at most the clip norm: single examples
// clipped to half their norm, through ClipSum and EvalClipSum's fused path,
// their gradients' Frobenius norms computed in float64. Clipping to exactly
// the clip norm fails this in about half the trials (the two float32
// roundings of each entry push the norm up by up to 2⁻²³ relative);
// effectiveClip's margin of 2⁻²⁰ is what makes it pass. Float64 is held to
// the clip norm with a margin of 2⁻⁵⁰.
func TestFloat32ClipBound(t *testing.T) {
	for _, prec := range []linalg.Precision{linalg.Float32, linalg.Float64} {
		for trial := range 200 {
			p := newProblem(t, uint64(100+trial), 1, 97+trial%50, 3+trial%9, 1, trial%2 == 0)
			k, _ := p.w.Dims()
			var b Batch
			b.Precision = prec
			require.NoError(t, Sigmoid{}.Eval(&b, p.x, p.labels, p.w, p.bias, 1))
			clip := b.Norms[0] / 2
			slack := 1.0
			if prec == linalg.Float64 {
				slack = 1 + 0x1p-50
			}
			g1, g2 := &mat.Dense{}, &mat.Dense{}
			var b1, b2 []float64
			if p.bias != nil {
				b1, b2 = make([]float64, k), make([]float64, k)
			}
			require.NoError(t, b.ClipSum(g1, b1, clip, 1))
			fb := Batch{Precision: prec}
			require.NoError(t, EvalClipSum(&fb, Sigmoid{}, p.x, p.labels, []int{0}, p.w, p.bias, clip, g2, b2, 1))
			for name, g := range map[string]*mat.Dense{"ClipSum": g1, "EvalClipSum": g2} {
				bias := b1
				if name == "EvalClipSum" {
					bias = b2
				}
				n2 := mat.Norm(g, 2) * mat.Norm(g, 2)
				for _, v := range bias {
					n2 += v * v
				}
				if math.Sqrt(n2) > clip*slack {
					t.Fatalf("%v, trial %d, %s: clipped gradient norm %v > clip %v (%.3g relative)",
						prec, trial, name, math.Sqrt(n2), clip, math.Sqrt(n2)/clip-1)
				}
			}
		}
	}
}

// TestFusedRows: FusedRows is the boundary of EvalClipSum's fused path (the
// scratch bound), and the figures of fusedMaxScratch's doc.
func TestFusedRows(t *testing.T) {
	for _, c := range []struct{ d, k, lo, hi int }{{784, 10, 6000, 8000}, {768, 100, 600, 800}, {5, 2, 100000, 1 << 40}} {
		r := FusedRows(c.d, c.k)
		if r < c.lo || r > c.hi {
			t.Errorf("FusedRows(%d, %d) = %d, want in [%d, %d]", c.d, c.k, r, c.lo, c.hi)
		}
		if linalg.ScoreGradScratch(r, c.d, c.k) > fusedMaxScratch || linalg.ScoreGradScratch(r+1, c.d, c.k) <= fusedMaxScratch {
			t.Errorf("FusedRows(%d, %d) = %d is not the boundary", c.d, c.k, r)
		}
	}
}
