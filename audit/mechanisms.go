package audit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
)

// A Break is a deliberate bug planted in a ready-made mechanism, so that the
// audit can be shown to catch it: the broken mechanism still claims the
// Setup's (ε, δ) but is not (ε, δ)-DP.
type Break int

const (
	// None is the correct mechanism.
	None Break = iota
	// HalfNoise adds noise of standard deviation σ/2 instead of the σ
	// calibrated for the claimed (ε, δ).
	HalfNoise
	// NoClip skips clipping: the canary, of norm CanaryScale·C, enters at
	// full norm.
	NoClip
	// ReuseNoise adds the same noise to every class of a K-class release (one
	// noise vector to every row of the per-class sums or gradient, one noise
	// matrix to every per-class Gram) instead of independent noise per class.
	// The Projection statistic, which reads one class, cannot see it; audit
	// it with Difference, in which the shared noise cancels.
	ReuseNoise
)

var breakNames = [...]string{None: "none", HalfNoise: "half-noise", NoClip: "no-clip", ReuseNoise: "reuse-noise"}

// String returns "none", "half-noise", "no-clip" or "reuse-noise".
func (b Break) String() string {
	if b < 0 || int(b) >= len(breakNames) {
		return fmt.Sprintf("Break(%d)", int(b))
	}
	return breakNames[b]
}

// ParseBreak returns the Break named s (see Break.String), or a *ParamError.
func ParseBreak(s string) (Break, error) {
	for b, name := range breakNames {
		if s == name {
			return Break(b), nil
		}
	}
	return 0, fmt.Errorf("audit: break %q: %w", s, paramError("Break", math.NaN(), "want none, half-noise, no-clip or reuse-noise"))
}

// A Statistic is how a ready-made mechanism reduces its release to the
// scalar that Run thresholds.
type Statistic int

const (
	// Projection is the release's inner product with the canary's own
	// contribution, normalised to unit norm: the canary's class row of the
	// per-class sums, uᵀĜu for the Gram, the Frobenius inner product of the
	// noisy gradient sum with the canary's gradient direction. It is the
	// most powerful test against a correct Gaussian mechanism: the
	// statistic is N(0, σ²) without the canary and N(Δ, σ²) with it, so the
	// audit can reach the claimed ε.
	Projection Statistic = iota
	// Difference is the same inner product taken on the difference of the
	// canary's class and another class (row a − row b, Ĝ_a − Ĝ_b), divided
	// by √2. Independent noise per class gives it variance σ² and a shift of
	// about Δ/√2, a weaker test; noise reused across classes cancels in it,
	// so it separates the worlds exactly.
	Difference
)

var statisticNames = [...]string{Projection: "projection", Difference: "difference"}

// String returns "projection" or "difference".
func (s Statistic) String() string {
	if s < 0 || int(s) >= len(statisticNames) {
		return fmt.Sprintf("Statistic(%d)", int(s))
	}
	return statisticNames[s]
}

// ParseStatistic returns the Statistic named s (see Statistic.String), or a
// *ParamError.
func ParseStatistic(s string) (Statistic, error) {
	for v, name := range statisticNames {
		if s == name {
			return Statistic(v), nil
		}
	}
	return 0, fmt.Errorf("audit: statistic %q: %w", s, paramError("Statistic", math.NaN(), "want projection or difference"))
}

// CanaryScale is the norm of the canary's feature vector in units of the
// clip norm C. A correct mechanism clips it to C, where it is the worst case
// for every release here; a mechanism that skips clipping lets it in whole.
const CanaryScale = 10

// Setup describes a ready-made mechanism to audit: its claimed privacy, the
// synthetic dataset D, the canary, the planted bug and the test statistic.
//
// D has N examples of Dim features in Classes − 1 classes (0 … Classes−2),
// drawn from DataSeed; their last feature is zero and their norms spread
// around C, so clipping binds for some. The canary is CanaryScale·C times
// the last unit vector, orthogonal to all of D, with the label Classes − 1
// of its own class: adding it moves the release by exactly its sensitivity
// Δ, in a direction no example of D shares.
type Setup struct {
	// Epsilon and Delta are the claimed privacy of one release under
	// add/remove-one adjacency. The noise σ is calibrated to them exactly
	// (accountant.GaussianMu: one Gaussian release is (ε, δ)-DP iff
	// Δ/σ ≤ μ(ε, δ)). Required: Epsilon positive and finite, Delta in (0, 1).
	Epsilon, Delta float64
	// Clip is the L2 norm C feature rows are clipped to. Zero means 1.
	Clip float64
	// GradClip is the Frobenius norm C_g per-example gradients are clipped to
	// (Step only). Zero means Clip/2, so that the canary's gradient, of norm
	// about C, is clipped to exactly C_g.
	GradClip float64
	// N is the number of examples of D. Zero means 32.
	N int
	// Dim is the number of features d, at least 2. Zero means 4.
	Dim int
	// Classes is K, at least 2. Zero means 3.
	Classes int
	// Break is the planted bug; None (zero) is the correct mechanism.
	Break Break
	// Statistic is the test statistic; Projection (zero) by default.
	Statistic Statistic
	// DataSeed seeds the synthetic dataset D.
	DataSeed uint64
}

// setup is a validated Setup with its defaults filled in and its data made.
type setup struct {
	Setup
	mu     float64          // μ(ε, δ) of one Gaussian release
	x0, x1 *linalg.Matrix32 // D and D ∪ {canary}, unclipped
	y0, y1 []int            // their labels
	canary int              // the canary's class
	other  int              // the class Difference compares with
	u      []float64        // the canary's unit direction (last unit vector)
}

func (s Setup) prepare() (*setup, error) {
	if !(s.Epsilon > 0) || math.IsInf(s.Epsilon, 0) {
		return nil, fmt.Errorf("audit: %w", paramError("Epsilon", s.Epsilon, "must be positive and finite"))
	}
	if err := checkDelta(s.Delta); err != nil {
		return nil, err
	}
	if s.Clip == 0 {
		s.Clip = 1
	}
	if !(s.Clip > 0) || math.IsInf(s.Clip, 0) || s.Clip > 1e6 {
		return nil, fmt.Errorf("audit: %w", paramError("Clip", s.Clip, "must be positive, at most 1e6"))
	}
	if s.GradClip == 0 {
		s.GradClip = s.Clip / 2
	}
	if !(s.GradClip > 0) || math.IsInf(s.GradClip, 0) || s.GradClip > 1e6 {
		return nil, fmt.Errorf("audit: %w", paramError("GradClip", s.GradClip, "must be positive, at most 1e6"))
	}
	if s.N == 0 {
		s.N = 32
	}
	if s.Dim == 0 {
		s.Dim = 4
	}
	if s.Classes == 0 {
		s.Classes = 3
	}
	switch {
	case s.N < 1 || s.N > 1<<20:
		return nil, fmt.Errorf("audit: %w", paramError("N", float64(s.N), "must be in [1, 2²⁰]"))
	case s.Dim < 2 || s.Dim > 512:
		return nil, fmt.Errorf("audit: %w", paramError("Dim", float64(s.Dim), "must be in [2, 512]"))
	case s.Classes < 2 || s.Classes > 1000:
		return nil, fmt.Errorf("audit: %w", paramError("Classes", float64(s.Classes), "must be in [2, 1000]"))
	case s.Break < None || s.Break > ReuseNoise:
		return nil, fmt.Errorf("audit: %w", paramError("Break", float64(s.Break), "unknown"))
	case s.Statistic < Projection || s.Statistic > Difference:
		return nil, fmt.Errorf("audit: %w", paramError("Statistic", float64(s.Statistic), "unknown"))
	}
	mu, err := accountant.GaussianMu(s.Epsilon, s.Delta)
	if err != nil {
		return nil, fmt.Errorf("audit: calibrating to (ε = %g, δ = %g): %w", s.Epsilon, s.Delta, err)
	}
	p := &setup{Setup: s, mu: mu, canary: s.Classes - 1, other: 0}
	d := s.Dim
	rng := rand.New(rand.NewPCG(s.DataSeed, 0x6175646974)) // "audit"
	p.x0 = linalg.NewMatrix32(s.N, d)
	p.y0 = make([]int, s.N)
	for i := range s.N {
		row := p.x0.Row(i)
		var norm float64
		for j := range d - 1 {
			v := rng.NormFloat64()
			row[j] = float32(v)
			norm += v * v
		}
		// Norms spread over [C/2, 2C]: clipping binds for some rows.
		scale := s.Clip * (0.5 + 1.5*rng.Float64()) / math.Sqrt(norm)
		for j := range d - 1 {
			row[j] = float32(float64(row[j]) * scale)
		}
		p.y0[i] = i % (s.Classes - 1)
	}
	p.x1 = linalg.NewMatrix32(s.N+1, d)
	copy(p.x1.Data, p.x0.Data)
	p.x1.Row(s.N)[d-1] = float32(CanaryScale * s.Clip)
	p.y1 = append(append([]int(nil), p.y0...), p.canary)
	p.u = make([]float64, d)
	p.u[d-1] = 1
	return p, nil
}

// sigma returns the noise standard deviation for sensitivity sens: the
// calibrated Δ/μ, halved under HalfNoise.
func (p *setup) sigma(sens float64) float64 {
	s := sens / p.mu
	if p.Break == HalfNoise {
		s /= 2
	}
	return s
}

// features returns the features of world w, clipped to C unless NoClip.
func (p *setup) features(w int) (*linalg.Matrix32, error) {
	x := p.x0
	if w == 1 {
		x = p.x1
	}
	x = &linalg.Matrix32{Rows: x.Rows, Cols: x.Cols, Data: append([]float32(nil), x.Data...)}
	if p.Break == NoClip {
		return x, nil
	}
	if _, err := dp.ClipRows(x, p.Clip); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return x, nil
}

func (p *setup) labels(w int) []int {
	if w == 1 {
		return p.y1
	}
	return p.y0
}

// Gaussian returns the plain Gaussian mechanism on the per-class sums of D's
// rows clipped to C (linalg.Stats, the XᵀY of DP-LS, K×d): L2 sensitivity C
// under add/remove-one adjacency (dp.SumSensitivity), N(0, σ²) noise on every
// entry (dp.AddGaussianDense), σ = C/μ(ε, δ). The statistic is the canary's
// class row projected on the canary's direction (Projection), or that minus
// the projection of class 0's row, over √2 (Difference).
func Gaussian(s Setup) (Mechanism, error) {
	p, err := s.prepare()
	if err != nil {
		return nil, err
	}
	sens, err := dp.SumSensitivity(p.Clip, dp.AddRemove)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var base [2]*mat.Dense
	for w := range 2 {
		x, err := p.features(w)
		if err != nil {
			return nil, err
		}
		st, err := linalg.NewStats(p.Dim, p.Classes)
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		st.Workers = 1
		if err := st.Add(x, p.labels(w)); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		base[w] = st.ClassSums()
	}
	return p.denseMechanism(base, p.rowWeights(p.u), p.sigma(sens)), nil
}

// rowWeights returns the K×d weights of the statistic for a release whose
// canary's contribution to row l is dir times some factor: dir on the
// canary's row (Projection), or (dir on the canary's row − dir on the other
// row)/√2 (Difference).
func (p *setup) rowWeights(dir []float64) *mat.Dense {
	w := mat.NewDense(p.Classes, p.Dim, nil)
	w.SetRow(p.canary, dir)
	if p.Statistic == Difference {
		neg := make([]float64, len(dir))
		for j, v := range dir {
			neg[j] = -v
		}
		w.SetRow(p.other, neg)
		w.Scale(1/math.Sqrt2, w)
	}
	return w
}

// denseMechanism releases base[w] + noise (K×d) and returns ⟨weights, release⟩.
// Release buffers are pooled: the Mechanism is safe for concurrent use.
func (p *setup) denseMechanism(base [2]*mat.Dense, weights *mat.Dense, sigma float64) Mechanism {
	reuse := p.Break == ReuseNoise
	k, d := weights.Dims()
	wt := weights.RawMatrix().Data
	raw := [2][]float64{base[0].RawMatrix().Data, base[1].RawMatrix().Data}
	pool := sync.Pool{New: func() any { b := make([]float64, k*d+d); return &b }}
	return func(withCanary bool, src dp.Source) (float64, error) {
		w := 0
		if withCanary {
			w = 1
		}
		bp := pool.Get().(*[]float64)
		defer pool.Put(bp)
		buf, v := (*bp)[:k*d], (*bp)[k*d:]
		copy(buf, raw[w])
		if reuse {
			clear(v)
			if err := dp.AddGaussian(v, sigma, src); err != nil {
				return 0, err
			}
			for i := range k {
				floats.Add(buf[i*d:(i+1)*d], v)
			}
		} else if err := dp.AddGaussianDense(mat.NewDense(k, d, buf), sigma, src); err != nil {
			return 0, err
		}
		return floats.Dot(wt, buf), nil
	}
}

// Gram returns the noisy Gram release of DP-LS: the Gram Σ x̃x̃ᵀ of D's rows
// clipped to C (linalg.Gram), L2 sensitivity C² under add/remove-one
// adjacency (dp.GramSensitivity), with symmetric noise (dp.AddGaussianSym,
// σ² on the diagonal, σ²/2 off it), σ = C²/μ(ε, δ). The statistic is uᵀĜu
// for the canary's unit direction u, whose noise is N(0, σ²) for any unit u.
//
// With the Difference statistic or the ReuseNoise break it releases instead
// the K per-class Grams {Ĝ_l} jointly, as DP-LS's per-class form does (the
// same sensitivity C², each example being in one class), and the statistic is
// uᵀ(Ĝ_a − Ĝ_0)u/√2 for the canary's class a (Difference) or uᵀĜ_a u.
func Gram(s Setup) (Mechanism, error) {
	p, err := s.prepare()
	if err != nil {
		return nil, err
	}
	sens, err := dp.GramSensitivity(p.Clip, dp.AddRemove)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	perClass := p.Statistic == Difference || p.Break == ReuseNoise
	blocks := 1
	if perClass {
		blocks = p.Classes
	}
	var base [2][]*mat.SymDense
	for w := range 2 {
		x, err := p.features(w)
		if err != nil {
			return nil, err
		}
		base[w] = make([]*mat.SymDense, blocks)
		for l := range blocks {
			sub := x
			if perClass {
				sub = rowsOfClass(x, p.labels(w), l)
			}
			g := mat.NewSymDense(p.Dim, nil)
			if sub.Rows > 0 {
				if g, err = linalg.Gram(sub, 1); err != nil {
					return nil, fmt.Errorf("audit: %w", err)
				}
			}
			base[w][l] = g
		}
	}
	// weight[l] multiplies uᵀĜ_l u.
	weight := make([]float64, blocks)
	switch {
	case !perClass:
		weight[0] = 1
	case p.Statistic == Difference:
		weight[p.canary], weight[p.other] = 1/math.Sqrt2, -1/math.Sqrt2
	default:
		weight[p.canary] = 1
	}
	sigma, u, reuse := p.sigma(sens), p.u, p.Break == ReuseNoise
	return func(withCanary bool, src dp.Source) (float64, error) {
		w := 0
		if withCanary {
			w = 1
		}
		var shared *mat.SymDense
		if reuse {
			shared = mat.NewSymDense(p.Dim, nil)
			if err := dp.AddGaussianSym(shared, sigma, src); err != nil {
				return 0, err
			}
		}
		var t float64
		for l, b := range base[w] {
			g := mat.NewSymDense(p.Dim, nil)
			g.CopySym(b)
			if reuse {
				g.AddSym(g, shared)
			} else if err := dp.AddGaussianSym(g, sigma, src); err != nil {
				return 0, err
			}
			if weight[l] != 0 {
				uv := mat.NewVecDense(len(u), u)
				t += weight[l] * mat.Inner(uv, g, uv)
			}
		}
		return t, nil
	}, nil
}

// rowsOfClass returns a copy of the rows of x labelled l (possibly none).
func rowsOfClass(x *linalg.Matrix32, labels []int, l int) *linalg.Matrix32 {
	out := &linalg.Matrix32{Cols: x.Cols}
	for i, y := range labels {
		if y == l {
			out.Data = append(out.Data, x.Row(i)...)
			out.Rows++
		}
	}
	return out
}

// Step returns one full-batch step of DP-SGD / DP-FC from W = 0: the sum over
// D of the per-example gradients of the one-vs-all sigmoid loss with the
// paper's fixed bias (losses.Sigmoid, losses.PaperFixedBias), at features
// clipped to C, each gradient clipped to Frobenius norm C_g
// (losses.Batch.ClipSum), with N(0, σ²) noise on each of the K·d entries
// (dp.AddGaussianDense), σ = C_g/μ(ε, δ): L2 sensitivity C_g under
// add/remove-one adjacency (dp.GradientSumSensitivity). The NoClip break
// skips both clippings (losses.Batch.Grad).
//
// The canary's gradient is r_c x_cᵀ, with x_c orthogonal to D, so it is
// orthogonal in Frobenius inner product to every gradient of D. The
// statistic is the noisy gradient sum's inner product with its unit direction
// (Projection), or the same on the difference of the canary's class row and
// class 0's row, over √2 (Difference).
func Step(s Setup) (Mechanism, error) {
	p, err := s.prepare()
	if err != nil {
		return nil, err
	}
	sens, err := dp.GradientSumSensitivity(p.GradClip, dp.AddRemove)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	loss := losses.Sigmoid{FixedBias: losses.PaperFixedBias}
	zero := mat.NewDense(p.Classes, p.Dim, nil)
	var base [2]*mat.Dense
	for w := range 2 {
		x, err := p.features(w)
		if err != nil {
			return nil, err
		}
		var b losses.Batch
		if err := loss.Eval(&b, x, p.labels(w), zero, nil, 1); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		g := mat.NewDense(p.Classes, p.Dim, nil)
		if p.Break == NoClip {
			err = b.Grad(g, nil, 1)
		} else {
			err = b.ClipSum(g, nil, p.GradClip, 1)
		}
		if err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
		base[w] = g
	}
	// The canary's gradient direction: its residuals (one Eval on the canary
	// alone) times u, normalised.
	xc := &linalg.Matrix32{Rows: 1, Cols: p.Dim, Data: append([]float32(nil), p.x1.Row(p.N)...)}
	var b losses.Batch
	if err := loss.Eval(&b, xc, []int{p.canary}, zero, nil, 1); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	r := mat.Row(nil, 0, b.R)
	dir := mat.NewDense(p.Classes, p.Dim, nil)
	for l, v := range r {
		for j, uj := range p.u {
			dir.Set(l, j, v*uj)
		}
	}
	if p.Statistic == Difference {
		row := make([]float64, p.Dim)
		for j, uj := range p.u {
			row[j] = uj * math.Copysign(1, r[p.canary]-r[p.other])
		}
		return p.denseMechanism(base, p.rowWeights(row), p.sigma(sens)), nil
	}
	dir.Scale(1/mat.Norm(dir, 2), dir)
	return p.denseMechanism(base, dir, p.sigma(sens)), nil
}
