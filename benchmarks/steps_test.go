package benchmarks

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
	"github.com/dpopt/dpopt/optim"
	"gonum.org/v1/gonum/mat"
)

// A shape is a feature matrix n×d with K classes. The ImageNet shape is a
// 200 000-row slice of ImageNet-1k (n = 1 281 167) at d = 1280, K = 1000:
// steps linear in n extrapolate by ×6.41; it is skipped under -short.
type shape struct {
	name    string
	n, d, k int
	large   bool
}

var shapes = []shape{
	{"mnist", 60000, 784, 10, false},
	{"cifar100", 50000, 768, 100, false},
	{"imagenet", 200000, 1280, 1000, true},
}

func (s shape) String() string { return fmt.Sprintf("%s/n=%d/d=%d/K=%d", s.name, s.n, s.d, s.k) }

// forShapes runs f as a sub-benchmark per shape, skipping the large ones
// under -short.
func forShapes(b *testing.B, f func(b *testing.B, s shape)) {
	for _, s := range shapes {
		b.Run(s.String(), func(b *testing.B) {
			if s.large && testing.Short() {
				b.Skip("large shape skipped under -short")
			}
			f(b, s)
		})
	}
}

// problem returns uniform [-1, 1) features scaled by 1/√d (rows of norm about
// 0.58) and uniform labels, from rand.NewPCG(1, 2).
func problem(n, d, k int) (*linalg.Matrix32, []int) {
	rnd := rand.New(rand.NewPCG(1, 2))
	x := linalg.NewMatrix32(n, d)
	sc := 1 / math.Sqrt(float64(d))
	for i := range x.Data {
		x.Data[i] = float32((2*rnd.Float64() - 1) * sc)
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = rnd.IntN(k)
	}
	return x, labels
}

// randDense returns an r×c matrix of N(0, σ²) entries from rand.NewPCG(3, 4).
func randDense(r, c int, sigma float64) *mat.Dense {
	rnd := rand.New(rand.NewPCG(3, 4))
	a := mat.NewDense(r, c, nil)
	raw := a.RawMatrix()
	for i := range raw.Data {
		raw.Data[i] = sigma * rnd.NormFloat64()
	}
	return a
}

// timer reports, after a b.Loop loop, GFLOP/s (if flops > 0) and the CPU
// seconds per operation summed over threads.
type timer struct {
	cpu0 time.Duration
}

func startTimer() timer { return timer{cpuTime()} }

func (t timer) report(b *testing.B, flops float64) {
	cpu := cpuTime() - t.cpu0
	if flops > 0 {
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	}
	if t.cpu0 > 0 {
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	}
}

// forShapesPrecisions runs f as a sub-benchmark per shape and precision,
// named shape/prec=float64 and shape/prec=float32.
func forShapesPrecisions(b *testing.B, f func(b *testing.B, s shape, p linalg.Precision)) {
	forShapes(b, func(b *testing.B, s shape) {
		for _, p := range precisions {
			b.Run("prec="+p.String(), func(b *testing.B) { f(b, s, p) })
		}
	})
}

// BenchmarkXtX times linalg.GramPrecision: XᵀX of float32 rows, with exact
// float64 products (prec=float64) or float32 blocks added in float64
// (prec=float32, as numpy's reference). GFLOP/s counts the full product,
// 2·n·d².
func BenchmarkXtX(b *testing.B) {
	forShapesPrecisions(b, func(b *testing.B, s shape, p linalg.Precision) {
		x, _ := problem(s.n, s.d, s.k)
		t := startTimer()
		for b.Loop() {
			if _, err := linalg.GramPrecision(x, 0, p); err != nil {
				b.Fatal(err)
			}
		}
		t.report(b, 2*float64(s.n)*float64(s.d)*float64(s.d))
	})
}

// BenchmarkStats times linalg.Stats.Add, the one pass of DP-LS over the data:
// XᵀX and the per-class sums XᵀY (scatter-add by label) together. The XᵀY
// part alone is BenchmarkClassSums in package linalg.
func BenchmarkStats(b *testing.B) {
	forShapesPrecisions(b, func(b *testing.B, s shape, p linalg.Precision) {
		x, labels := problem(s.n, s.d, s.k)
		t := startTimer()
		for b.Loop() {
			st, err := linalg.NewStats(s.d, s.k)
			if err != nil {
				b.Fatal(err)
			}
			st.Precision = p
			if err := st.Add(x, labels); err != nil {
				b.Fatal(err)
			}
		}
		t.report(b, 2*float64(s.n)*float64(s.d)*float64(s.d))
	})
}

// noisyCov returns XᵀX/n of the shape's features plus symmetric N(0, σ²)
// noise with σ = 10⁻³·trace/d, so that it has negative eigenvalues to clamp.
func noisyCov(s shape) *mat.SymDense {
	x, _ := problem(min(s.n, 20000), s.d, s.k) // the spectrum, not n, matters here
	g, err := linalg.Gram(x, 0)
	if err != nil {
		panic(err)
	}
	d := s.d
	var tr float64
	for i := range d {
		tr += g.At(i, i)
	}
	sigma := 1e-3 * tr / float64(d)
	rnd := rand.New(rand.NewPCG(5, 6))
	a := mat.NewSymDense(d, nil)
	for i := range d {
		for j := i; j < d; j++ {
			a.SetSym(i, j, g.At(i, j)+sigma*rnd.NormFloat64())
		}
	}
	return a
}

// BenchmarkEighPSD times linalg.ProjectPSD: eigendecomposition of a noisy
// d×d Gram and reconstruction with negative eigenvalues clamped to 0.
func BenchmarkEighPSD(b *testing.B) {
	forShapes(b, func(b *testing.B, s shape) {
		a := noisyCov(s)
		t := startTimer()
		for b.Loop() {
			if _, err := linalg.ProjectPSD(a, 0); err != nil {
				b.Fatal(err)
			}
		}
		t.report(b, 0)
	})
}

// BenchmarkCholeskySolve times linalg.CholeskySolve of the PSD-projected,
// ridge-regularised covariance with K right-hand sides. GFLOP/s counts
// d³/3 + 2·d²·K.
func BenchmarkCholeskySolve(b *testing.B) {
	forShapes(b, func(b *testing.B, s shape) {
		a, err := linalg.ProjectPSD(noisyCov(s), 0)
		if err != nil {
			b.Fatal(err)
		}
		var tr float64
		for i := range s.d {
			tr += a.At(i, i)
		}
		for i := range s.d {
			a.SetSym(i, i, a.At(i, i)+1e-2*tr/float64(s.d))
		}
		rhs := randDense(s.d, s.k, 1)
		t := startTimer()
		for b.Loop() {
			if _, err := linalg.CholeskySolve(a, rhs); err != nil {
				b.Fatal(err)
			}
		}
		d, k := float64(s.d), float64(s.k)
		t.report(b, d*d*d/3+2*d*d*k)
	})
}

// BenchmarkGradStep times one full-batch clipped-gradient step on the
// one-vs-all sigmoid loss with the paper's fixed bias, as DP-FC and
// full-batch DP-SGD run it: losses.Sigmoid.Eval (scores X·Wᵀ and row norms in
// one pass, residuals, gradient norms) then Batch.ClipSum ((c∘R)ᵀ·X), with
// the clip norm at the median gradient norm, without curvatures
// (Batch.NoCurvature, as DP-FC sets it). GFLOP/s counts the two GEMMs,
// 4·n·d·K. The Batch is kept across iterations, as a solver keeps it across
// steps, and one Eval and ClipSum run before the timer. Sub-benchmarks
// prec=float64 and prec=float32 set Batch.Precision.
func BenchmarkGradStep(b *testing.B) {
	forShapesPrecisions(b, func(b *testing.B, s shape, p linalg.Precision) {
		x, labels := problem(s.n, s.d, s.k)
		w := randDense(s.k, s.d, 0.01)
		loss := losses.Sigmoid{FixedBias: losses.PaperFixedBias}
		batch := losses.Batch{Precision: p, NoCurvature: true}
		if err := loss.Eval(&batch, x, labels, w, nil, 0); err != nil {
			b.Fatal(err)
		}
		clip := median(batch.Norms)
		grad := mat.NewDense(s.k, s.d, nil)
		// One untimed ClipSum too, so that its n×K buffer is allocated
		// (and its pages touched) before the timer, as in a solver's
		// steps after the first.
		if err := batch.ClipSum(grad, nil, clip, 0); err != nil {
			b.Fatal(err)
		}
		t := startTimer()
		for b.Loop() {
			if err := loss.Eval(&batch, x, labels, w, nil, 0); err != nil {
				b.Fatal(err)
			}
			if err := batch.ClipSum(grad, nil, clip, 0); err != nil {
				b.Fatal(err)
			}
		}
		t.report(b, 4*float64(s.n)*float64(s.d)*float64(s.k))
	})
}

func median(v []float64) float64 {
	return quickSelect(append([]float64(nil), v...), len(v)/2)
}

func quickSelect(s []float64, k int) float64 {
	lo, hi := 0, len(s)-1
	for lo < hi {
		p := s[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for s[i] < p {
				i++
			}
			for s[j] > p {
				j--
			}
			if i <= j {
				s[i], s[j] = s[j], s[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return s[k]
		}
	}
	return s[k]
}

// perExampleBatch is the batch size of the per-example comparison.
const perExampleBatch = 1024

// BenchmarkPerExample compares, on a batch of 1024 examples, the clipped
// gradient sum by the norm identity (Eval + ClipSum: ‖r_i x_iᵀ‖ = ‖r_i‖‖x_i‖,
// one GEMM) with materialising the per-example gradients: the B×K×d tensor
// g_b = r_b x_bᵀ is written out (in chunks of at most 64 MiB, as numpy or
// Opacus would hold it), then its norms, then the clipped sum Σ_b c_b g_b.
// Both use the same residuals (one Eval). GFLOP/s counts the useful work of
// the identity, 4·B·d·K, for both, so the rates compare directly.
func BenchmarkPerExample(b *testing.B) {
	for _, s := range shapes[:2] {
		x, labels := problem(s.n, s.d, s.k)
		xb := x.Slice(0, perExampleBatch)
		yb := labels[:perExampleBatch]
		w := randDense(s.k, s.d, 0.01)
		loss := losses.Sigmoid{FixedBias: losses.PaperFixedBias}
		var batch losses.Batch
		if err := loss.Eval(&batch, xb, yb, w, nil, 0); err != nil {
			b.Fatal(err)
		}
		clip := median(batch.Norms)
		flops := 4 * float64(perExampleBatch*s.d*s.k)
		name := fmt.Sprintf("%s/B=%d/d=%d/K=%d", s.name, perExampleBatch, s.d, s.k)
		b.Run("method=identity/"+name, func(b *testing.B) {
			grad := mat.NewDense(s.k, s.d, nil)
			t := startTimer()
			for b.Loop() {
				if err := loss.Eval(&batch, xb, yb, w, nil, 0); err != nil {
					b.Fatal(err)
				}
				if err := batch.ClipSum(grad, nil, clip, 0); err != nil {
					b.Fatal(err)
				}
			}
			t.report(b, flops)
		})
		b.Run("method=materialised/"+name, func(b *testing.B) {
			m := newMaterialiser(perExampleBatch, s.d, s.k)
			t := startTimer()
			for b.Loop() {
				if err := loss.Eval(&batch, xb, yb, w, nil, 0); err != nil {
					b.Fatal(err)
				}
				m.clipSum(xb, batch.R, clip)
			}
			t.report(b, flops)
		})
	}
}

// A materialiser computes the clipped gradient sum the naive way, holding
// per-example gradients in a chunk×K×d tensor.
type materialiser struct {
	d, k, chunk int
	g           []float64 // chunk×K×d
	norms       []float64
	sum         []float64 // K×d
}

func newMaterialiser(batch, d, k int) *materialiser {
	chunk := batch
	for chunk > 1 && chunk*k*d*8 > 64<<20 {
		chunk /= 2
	}
	return &materialiser{d: d, k: k, chunk: chunk, g: make([]float64, chunk*k*d), norms: make([]float64, chunk), sum: make([]float64, k*d)}
}

// clipSum sets m.sum to Σ_b min(1, clip/‖g_b‖) g_b with g_b = r_b x_bᵀ.
func (m *materialiser) clipSum(x *linalg.Matrix32, r *mat.Dense, clip float64) {
	clear(m.sum)
	kd := m.k * m.d
	for c0 := 0; c0 < x.Rows; c0 += m.chunk {
		nb := min(m.chunk, x.Rows-c0)
		for b := range nb { // materialise
			row, rb := x.Row(c0+b), r.RawRowView(c0+b)
			gb := m.g[b*kd : (b+1)*kd]
			for l, rl := range rb {
				gl := gb[l*m.d : (l+1)*m.d]
				for j, v := range row {
					gl[j] = rl * float64(v)
				}
			}
		}
		for b := range nb { // norms
			var ss float64
			for _, v := range m.g[b*kd : (b+1)*kd] {
				ss += v * v
			}
			m.norms[b] = math.Sqrt(ss)
		}
		for b := range nb { // clipped sum
			c := 1.0
			if m.norms[b] > clip {
				c = clip / m.norms[b]
			}
			for j, v := range m.g[b*kd : (b+1)*kd] {
				m.sum[j] += c * v
			}
		}
	}
}

// BenchmarkDPLS times DP-LS end to end on in-memory data with optim.LS at
// (ε, δ) = (1, 10⁻⁵) in the global form (Global: true, as numpy_reference.py's
// dpls()): clip the rows to norm 0.5, XᵀX and XᵀY in one pass, symmetric
// noise on the Gram and Gaussian noise on XᵀY, PSD projection, ridge,
// Cholesky solve for the K classes. (Since 2026-11-29 02:02, LS picks the
// per-class form by itself when n ≥ 4·K·d, as at the MNIST shape; that form
// is BenchmarkDPLSPerClass.)
//
// The sub-benchmarks prec=float32 (the default) and prec=float64 (Float64:
// true, exact products) differ in the Gram's arithmetic alone.
func BenchmarkDPLS(b *testing.B) {
	benchmarkDPLS(b, &optim.LS{Privacy: optim.Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 0.5, Global: true})
}

// BenchmarkDPLSPerClass times DP-LS in the per-class form (PerClass: true):
// the K per-class Grams, the statistics pass, K+1 PSD projections and K
// Cholesky solves. numpy_reference.py has no counterpart.
func BenchmarkDPLSPerClass(b *testing.B) {
	benchmarkDPLS(b, &optim.LS{Privacy: optim.Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 0.5, PerClass: true})
}

func benchmarkDPLS(b *testing.B, proto *optim.LS) {
	forShapesPrecisions(b, func(b *testing.B, s shape, p linalg.Precision) {
		x, labels := problem(s.n, s.d, s.k)
		data := &optim.Data{X: x, Labels: labels, Classes: s.k}
		ls := *proto
		ls.Float64 = p == linalg.Float64
		t := startTimer()
		for b.Loop() {
			if _, err := ls.Solve(context.Background(), data, nil, dp.NewSeededSource(1)); err != nil {
				b.Fatal(err)
			}
		}
		t.report(b, 2*float64(s.n)*float64(s.d)*float64(s.d))
	})
}

// BenchmarkDPFC times DP-FC end to end on in-memory data with optim.FC at
// (ε, δ) = (1, 10⁻⁵) and its defaults (10 full-batch steps, one-vs-all
// sigmoid with fixed bias −10): clip the rows to norm 0.5, XᵀX, symmetric
// noise, PSD projection, ridge, Cholesky, then per step the scores, the
// clipped gradient sum ((c∘R)ᵀ·X), Gaussian noise and a preconditioned solve
// with K right-hand sides. GFLOP/s counts the Gram (2·n·d²) and the two
// GEMMs of each step (4·n·d·K). Sub-benchmarks: prec=float32 (the default)
// and prec=float64 (Float64: true).
func BenchmarkDPFC(b *testing.B) {
	forShapesPrecisions(b, func(b *testing.B, s shape, p linalg.Precision) {
		x, labels := problem(s.n, s.d, s.k)
		data := &optim.Data{X: x, Labels: labels, Classes: s.k}
		fc := &optim.FC{Privacy: optim.Privacy{Epsilon: 1, Delta: 1e-5}, ClipNorm: 0.5, GradClipNorm: 1, Float64: p == linalg.Float64}
		t := startTimer()
		for b.Loop() {
			if _, err := fc.Solve(context.Background(), data, nil, dp.NewSeededSource(1)); err != nil {
				b.Fatal(err)
			}
		}
		n, d, k := float64(s.n), float64(s.d), float64(s.k)
		t.report(b, 2*n*d*d+10*4*n*d*k)
	})
}
