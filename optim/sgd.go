package optim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
)

// SGD is DP-SGD (Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar, Zhang,
// "Deep Learning with Differential Privacy", CCS 2016, arXiv 1607.00133) for a
// linear classifier, with Poisson-sampled minibatches or, when BatchSize is
// the number of examples n, full batches (DP-GD).
//
// The model starts at zero. Each of the Steps steps:
//
//  1. samples a batch: every example is included independently with
//     probability q = BatchSize/n, using the Source's uniform bits, so batch
//     sizes vary (binomial, mean BatchSize) and may be empty; with
//     BatchSize = n there is no sampling (q = 1). The sample is drawn by
//     geometric gaps between included examples, one uniform word per
//     included example (and one more), which is the same distribution as one
//     Bernoulli(q) trial per example; see the sampler's comment in sgd.go for
//     the floating-point details (each inclusion probability is at most q
//     and within 10⁻⁹ of it, relative);
//  2. computes the sum over the batch of the per-example gradients of Loss,
//     each clipped to Frobenius norm GradClipNorm = C_g — the bias gradient
//     included when TrainBias is set — never materialising a per-example
//     gradient (losses.EvalClipSum: the sampled rows are read in place, and
//     a minibatch's scores, norms, clip factors and gradient are computed
//     in one pass over its rows);
//  3. adds independent N(0, (z·C_g)²) noise to every coordinate of that sum,
//     weights and trained biases alike (an empty batch releases noise only);
//  4. divides by the expected batch size BatchSize (n is public), adds the
//     gradient L2·W of the optional weight decay, and hands the result to
//     Optimizer with learning rate LearningRate·Schedule.Factor(t, Steps).
//
// # Privacy
//
// Adjacency is add/remove one example. Adding or removing an example changes
// the clipped gradient sum of a step by at most C_g in L2 norm (its clipped
// gradient, which it contributes to at most this one sum per step): the
// sensitivity is C_g, and the noise goes on the sum, before the division by
// BatchSize. The run is Steps adaptive compositions of the Poisson-subsampled
// Gaussian mechanism with noise multiplier z and sampling rate q (release
// "gradient", in the order of Privacy.Split); everything after the noise —
// division, weight decay, momentum, Adam, schedule — is post-processing.
// z is calibrated to (Epsilon, Delta) with PLD when q < 1 and exactly (GDP,
// μ = √Steps / z) when q = 1, unless Privacy.Accountant says otherwise.
// Noise is fresh at every step.
//
// The Ledger is charged once, before the first step, with the whole planned
// event (Steps repetitions): a reservation. Charging step by step would make
// the ledger re-account a growing composition Steps times. A run that is
// cancelled or fails after it started therefore leaves all planned steps
// recorded — an overstatement of what was released, never an understatement.
// A run the ledger refuses releases nothing and returns no model.
//
// A non-private run (Epsilon = +Inf) runs the same code, sampling and
// clipping included, without noise.
//
// The Report lists the release and, per step, the mean loss over the batch
// (0 for an empty batch), the norm of the noisy gradient handed to the
// optimizer and the batch size. The losses and batch sizes are computed from
// the private data without noise: they are diagnostics for the data owner and
// must not be published as if private.
type SGD struct {
	Privacy
	// Steps is the number of steps T. Required.
	Steps int
	// BatchSize is the expected batch size B, 1 ≤ B ≤ n: the sampling rate
	// is q = B/n. B = n means full batches without sampling (DP-GD).
	// Required.
	BatchSize int
	// GradClipNorm is C_g, the Frobenius norm each per-example gradient
	// (bias included when trained) is clipped to. Required.
	GradClipNorm float64
	// Loss is the per-example loss. Nil means softmax cross-entropy
	// (losses.Softmax). The paper's one-vs-all sigmoid with a fixed bias is
	// losses.Sigmoid{FixedBias: losses.PaperFixedBias}; a fixed bias cannot
	// be combined with TrainBias.
	Loss losses.Loss
	// LearningRate is η, positive. Zero means the default
	//
	//	η = min(64, B/(z·√T)) / C_g    (Plain, Momentum; z = 0 when non-private)
	//	η = min(0.1, 1/√T)             (Adam)
	//
	// which works across ε without per-ε tuning, for features of norm about
	// 1 (for instance L2-normalised rows). Why: over T steps the noise adds
	// to each weight a random walk of standard deviation η·z·C_g·√T/B; the
	// second term caps it at 1, so at small ε the noise cannot swamp the
	// scores. At large ε (small z) the cap 64 rules. The worst-case step limit
	// of gradient descent for softmax cross-entropy on features of norm ≤ 1
	// is 2/L = 4 (L = ½, the largest curvature in the scores), but L2-
	// normalised features spread over many directions, so the curvature
	// along almost all of them is far smaller, and the losses are Lipschitz:
	// a step past 2/L along the top direction oscillates, it does not
	// diverge. Measured (δ = 1e-5, mean of 3 seeds, ε = 0.1/0.3/1/3/8/∞): on
	// MNIST the cap 64 instead of 4 gave 86.1/89.2/90.9/91.5/91.6/91.6%
	// instead of 86.2/87.7/87.9/88.0/88.0/88.0% with Poisson batches (B =
	// n/10, T = 300), and 86.0/88.5/88.8/88.8/88.8/88.8% instead of 79.9%
	// at every ε full batch (T = 30); on digits it changed Poisson runs by at
	// most +0.7 points (95.5% without noise) and full-batch runs by −2.9 to
	// +3.1 points. Adam's steps are about η per coordinate whatever the
	// gradient's (or the noise's) scale, so its noise walk is about η·√T
	// whatever z is: 1/√T caps it, 0.1 caps the early steps. The defaults
	// use only public quantities (B, T, z, C_g).
	LearningRate float64
	// Optimizer turns noisy gradients into updates: Plain, Momentum or Adam.
	// Nil means Plain.
	Optimizer Optimizer
	// Schedule decays the learning rate over the steps; the zero value is
	// Constant.
	Schedule Schedule
	// L2 is λ ≥ 0, the weight of an optional weight decay (λ/2)‖W‖²_F on the
	// weights (not the bias): λ·W is added to the noisy mean gradient. It
	// depends on the data only through earlier releases, so it costs no
	// privacy. Zero means none.
	L2 float64
	// TrainBias trains a bias per class; its gradient is part of each
	// clipped per-example gradient (‖g_i‖_F = ‖r_i‖·√(‖x_i‖² + 1)) and
	// receives noise like the weights. If false, the bias is zero (or the
	// Sigmoid loss's FixedBias) and is not trained.
	TrainBias bool
	// Float64, if true, computes the scores and the clipped gradient sum of
	// every batch (losses.Batch, losses.EvalClipSum, whose fused path serves
	// minibatches) from exact products of the float32 features, summed in
	// float64, instead of in float32 blocks (linalg.Float32, the default;
	// about 10⁻⁶ relative, and less CPU time: about half for large batches
	// and K = 100, 10–30% less for MNIST-size minibatches). The releases and
	// the guarantee are the same.
	Float64 bool
	// Workers is the number of goroutines; zero means GOMAXPROCS. Results do
	// not depend on it.
	Workers int
}

var _ Solver = (*SGD)(nil)

// loss returns the loss in use.
func (s *SGD) loss() losses.Loss {
	if s.Loss == nil {
		return losses.Softmax{}
	}
	return s.Loss
}

func (s *SGD) optimizer() Optimizer {
	if s.Optimizer == nil {
		return Plain{}
	}
	return s.Optimizer
}

// fixedBias returns the Sigmoid loss's fixed bias, or 0.
func (s *SGD) fixedBias() float64 {
	switch l := s.Loss.(type) {
	case losses.Sigmoid:
		return l.FixedBias
	case *losses.Sigmoid:
		if l != nil {
			return l.FixedBias
		}
	}
	return 0
}

func (s *SGD) validate() error {
	if err := checkWorkers(s.Workers); err != nil {
		return err
	}
	if s.Steps < 1 {
		return &accountant.ParamError{Param: "Steps", Value: float64(s.Steps), Reason: "must be at least 1"}
	}
	if s.BatchSize < 1 {
		return &accountant.ParamError{Param: "BatchSize", Value: float64(s.BatchSize), Reason: "must be at least 1"}
	}
	if !(s.GradClipNorm > 0) || math.IsInf(s.GradClipNorm, 0) {
		return &accountant.ParamError{Param: "GradClipNorm", Value: s.GradClipNorm, Reason: "must be positive and finite"}
	}
	if !(s.LearningRate >= 0) || math.IsInf(s.LearningRate, 0) {
		return &accountant.ParamError{Param: "LearningRate", Value: s.LearningRate, Reason: "must be positive and finite (0 = default)"}
	}
	if !(s.L2 >= 0) || math.IsInf(s.L2, 0) {
		return &accountant.ParamError{Param: "L2", Value: s.L2, Reason: "must be non-negative and finite"}
	}
	if s.Workers < 0 {
		return &accountant.ParamError{Param: "Workers", Value: float64(s.Workers), Reason: "must be non-negative (0 = GOMAXPROCS)"}
	}
	if err := s.Schedule.validate(); err != nil {
		return err
	}
	if err := s.optimizer().validate(); err != nil {
		return err
	}
	if fb := s.fixedBias(); fb != 0 && s.TrainBias {
		return &accountant.ParamError{Param: "TrainBias", Value: fb, Reason: "cannot train a bias with the Sigmoid loss's FixedBias set"}
	}
	return s.Privacy.validate(1)
}

// checkN checks the batch size against the number of examples.
func (s *SGD) checkN(n int) error {
	if n < 1 {
		return &accountant.ParamError{Param: "n", Value: float64(n), Reason: "must be at least 1"}
	}
	if s.BatchSize > n {
		return &accountant.ParamError{Param: "BatchSize", Value: float64(s.BatchSize),
			Reason: fmt.Sprintf("must not exceed the number of examples (%d)", n)}
	}
	return nil
}

// kinds is the plan on n examples: Steps releases of the clipped gradient
// sum, of sensitivity C_g, at sampling rate B/n.
func (s *SGD) kinds(n int) []releaseKind {
	rate := 1.0
	if s.BatchSize < n {
		rate = float64(s.BatchSize) / float64(n)
	}
	return []releaseKind{{label: "gradient", sensitivity: s.GradClipNorm, count: s.Steps, rate: rate}}
}

// Plan implements Solver.
func (s *SGD) Plan(n int) (accountant.Event, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	if err := s.checkN(n); err != nil {
		return nil, err
	}
	return s.Privacy.plan(n, s.kinds(n))
}

// sgdMaxStep caps the default learning rate of Plain and Momentum; see
// SGD.LearningRate.
const sgdMaxStep = 64

// learningRate returns η: LearningRate, or the documented default for noise
// multiplier z (0 when non-private).
func (s *SGD) learningRate(z float64) float64 {
	if s.LearningRate > 0 {
		return s.LearningRate
	}
	b, sqrtT := float64(s.BatchSize), math.Sqrt(float64(s.Steps))
	if _, ok := s.optimizer().(Adam); ok {
		return min(0.1, 1/sqrtT)
	}
	if z == 0 {
		return sgdMaxStep / s.GradClipNorm
	}
	return min(sgdMaxStep, b/(z*sqrtT)) / s.GradClipNorm
}

// Solve implements Solver.
func (s *SGD) Solve(ctx context.Context, d *Data, l *accountant.Ledger, src dp.Source) (*Result, error) {
	start := time.Now()
	if err := s.validate(); err != nil {
		return nil, err
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	n, dim, k := d.X.Rows, d.X.Cols, d.Classes
	if err := s.checkN(n); err != nil {
		return nil, err
	}
	r, err := s.Privacy.start(s.kinds(n), l, src)
	if err != nil {
		return nil, err
	}
	var sigma, z float64
	if r.private {
		z, sigma = r.z[0], r.sigma(0)
		// The reservation: the whole planned event, once, before any release.
		if err := r.ledger.Spend(r.kinds[0].label, planEvent(r.kinds, r.z)); err != nil {
			return nil, fmt.Errorf("optim: DP-SGD: reserving %d steps: %w", s.Steps, err)
		}
	}

	size := k * dim
	if s.TrainBias {
		size += k
	}
	params := make([]float64, size)
	grad := make([]float64, size)
	w := mat.NewDense(k, dim, params[:k*dim])
	gradW := mat.NewDense(k, dim, grad[:k*dim])
	var bias, gradB []float64
	if s.TrainBias {
		bias, gradB = params[k*dim:], grad[k*dim:]
	}
	lr := s.learningRate(z)
	upd := s.optimizer().start(size)
	loss := s.loss()
	full := r.kinds[0].rate == 1
	inv := 1 / float64(s.BatchSize)

	var (
		batch   losses.Batch
		samples [3]sampler // step t's sample in samples[t%3]
		rows    []int      // nil: every example (full batch)
	)
	batch.Precision = precision(s.Float64)
	if !full {
		for i := range samples {
			samples[i] = newSampler(n, r.kinds[0].rate)
		}
	}
	// The randomness — step 0's sample, then step t's noise and step t+1's
	// sample for each t — does not depend on the data, so with two or more
	// workers it is drawn while gradients are computed. With minibatches it
	// is handed to a linalg.Team (Go), a step ahead: during step t the Team
	// draws step t+1's noise, in pieces of dp.NormalsChunk draws, and step
	// t+2's sample, in whatever time its workers (the caller's included)
	// would otherwise wait, and step t ends by waiting for what was handed
	// over during step t−1 (WaitFor). Its goroutines stay awake between
	// steps, sparing each step the wake-up of sleeping threads. With the
	// full batch, or batches too large for the fused pass that runs on a
	// Team, step t's noise and step t+1's sample are drawn on a fresh
	// goroutine during step t. Either way the draws are the same, from the same Source, in the
	// same order (dp.DrawNormals, dp.AddNormals), one goroutine at a time,
	// each before it is used, so the run is the same bits as drawing them in
	// turn after each gradient. A Source that adds hardened noise itself
	// (dp.GaussianAdder) is drawn from in order after each gradient instead.
	_, hardened := r.src.(dp.GaussianAdder)
	workers := s.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	split := r.private && !hardened
	ahead := workers > 1 && (split || !full) && !(r.private && hardened)
	var (
		noise     [2][]float64 // step t's N(0, 1) draws in noise[t%2] (split)
		noiseErr  [2]error     // the errors drawing them
		draws     []float64    // the current step's noise
		drawErr   error
		drawPanic any // a panic of the Source on the helper, re-raised on the caller
	)
	if split {
		noise[0], noise[1] = make([]float64, size), make([]float64, size)
		draws = noise[0]
	}
	// A Team only where EvalClipSum's fused pass, which runs on it, takes
	// the expected batch: with larger batches its goroutines would poll
	// beside the fresh ones of Eval and ClipSum.
	if b := float64(s.BatchSize); workers > 1 && !full && b+4*math.Sqrt(b) <= float64(losses.FusedRows(dim, k)) {
		team, err := linalg.NewTeam(workers)
		if err != nil {
			return nil, fmt.Errorf("optim: DP-SGD: %w", err)
		}
		// Closed even on a panic, after the functions handed to it return,
		// so that no goroutine draws from the Source after Solve returns.
		defer team.Close()
		batch.Team = team
	}
	if !full {
		rows = samples[0].draw(src)
	}
	pipe := batch.Team != nil && ahead // the Team draws a step ahead
	var nextRows [3][]int              // pipe: step t's sample in nextRows[t%3]
	// handOver hands the Team step u's noise and step u+1's sample, those
	// that exist, and returns how many functions it handed over.
	broken := false // pipe: a draw panicked (the Team re-raises it): no more draws
	handOver := func(u int) int {
		team, c := batch.Team, 0
		if split && u < s.Steps {
			b := u % 2
			noiseErr[b] = nil
			for lo := 0; lo < size; lo += dp.NormalsChunk {
				piece := noise[b][lo:min(lo+dp.NormalsChunk, size)]
				team.Go(func() {
					if noiseErr[b] == nil && !broken {
						broken = true // until the draw returns
						noiseErr[b] = dp.DrawNormals(piece, r.src)
						broken = false
					}
				})
				c++
			}
		}
		if u+1 < s.Steps {
			team.Go(func() {
				if !broken {
					broken = true
					nextRows[(u+1)%3] = samples[(u+1)%3].draw(src)
					broken = false
				}
			})
			c++
		}
		return c
	}
	if pipe {
		handOver(0)
	}
	steps := make([]Step, s.Steps)
	prog := progressFrom(ctx)
	prog.report("steps", 0, s.Steps)
	for t := range s.Steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("optim: DP-SGD step %d: %w", t, err)
		}
		m := n
		if !full {
			m = len(rows)
		}
		var next []int // the next step's sample, drawn after this step's noise
		draw := func() {
			if split {
				drawErr = dp.DrawNormals(draws, r.src)
			}
			if !full && t+1 < s.Steps {
				next = samples[(t+1)%3].draw(src)
			}
		}
		var helper sync.WaitGroup // the helper of a full-batch run (no Team)
		handed := 0               // pipe: the functions handed over for step t+1
		if ahead {
			if pipe {
				// What step t needs goes first; step t+1's draws, whose
				// pieces' calls of src.Normal are DrawNormals' on all of
				// them, fill the time workers would wait.
				batch.Team.Hurry()
				handed = handOver(t + 1)
			} else {
				helper.Go(func() {
					defer func() {
						if p := recover(); p != nil {
							drawPanic = p
						}
					}()
					draw()
				})
			}
		}
		var err error
		func() {
			if ahead {
				// Waited for even if the gradient panics, so that no
				// goroutine draws from the Source after Solve has returned.
				// A panic of the Source on the helper is re-raised here.
				defer func() {
					if pipe {
						// Step t's noise and step t+1's sample.
						batch.Team.WaitFor(handed)
						if split {
							draws, drawErr = noise[t%2], noiseErr[t%2]
						}
						if t+1 < s.Steps {
							next = nextRows[(t+1)%3]
						}
						return
					}
					helper.Wait()
					if drawPanic != nil {
						panic(drawPanic)
					}
				}()
			}
			if m > 0 {
				// The sampled rows are read in place (no gathered copy);
				// small batches take the fused path of EvalClipSum.
				err = losses.EvalClipSum(&batch, loss, d.X, d.Labels, rows, w, bias, s.GradClipNorm, gradW, gradB, s.Workers)
				if err == nil {
					steps[t].Loss = batch.Loss / float64(m)
				}
			} else {
				clear(grad)
			}
		}()
		if err != nil {
			return nil, fmt.Errorf("optim: DP-SGD step %d: %w", t, err)
		}
		steps[t].Batch = m
		switch {
		case split:
			if !ahead {
				draw()
			}
			if drawErr == nil {
				drawErr = dp.AddNormals(grad, sigma, draws)
			}
			if drawErr != nil {
				return nil, fmt.Errorf("optim: DP-SGD step %d: %w", t, drawErr)
			}
		case r.private:
			if err := dp.AddGaussian(grad, sigma, r.src); err != nil {
				return nil, fmt.Errorf("optim: DP-SGD step %d: %w", t, err)
			}
			draw()
		case !ahead:
			draw()
		}
		rows = next
		floats.Scale(inv, grad)
		if s.L2 > 0 {
			floats.AddScaled(grad[:k*dim], s.L2, params[:k*dim])
		}
		steps[t].GradNorm = floats.Norm(grad, 2)
		upd.update(params, grad, lr*s.Schedule.Factor(t, s.Steps))
		prog.report("steps", t+1, s.Steps)
	}
	if !floats.Equal(params, params) { // NaN anywhere
		return nil, fmt.Errorf("optim: DP-SGD diverged (learning rate %g): %w", lr, linalg.ErrNonFinite)
	}
	for _, v := range params {
		if math.IsInf(v, 0) {
			return nil, fmt.Errorf("optim: DP-SGD diverged (learning rate %g): %w", lr, linalg.ErrNonFinite)
		}
	}

	model := &Model{W: mat.DenseCopyOf(w)}
	switch {
	case s.TrainBias:
		model.Bias = append([]float64(nil), bias...)
	case s.fixedBias() != 0:
		model.Bias = make([]float64, k)
		for i := range model.Bias {
			model.Bias[i] = s.fixedBias()
		}
	}
	rep := &Report{Method: "sgd", N: n, Dim: dim, Classes: k, Steps: steps}
	r.report(rep, s.Privacy)
	rep.Seconds = time.Since(start).Seconds()
	return &Result{Model: model, Report: rep}, nil
}

// sampler draws Poisson samples — every example independently with
// probability q — as the indices of the included examples, by geometric gaps:
// O(q·n) uniform draws per sample instead of one per example.
//
// Independent Bernoulli(q) trials on examples 0, 1, …, n−1 are the same
// process as independent gaps G_1, G_2, … between inclusions (the first
// counted from −1), each geometric: P(G ≥ g) = (1 − q)^g for g = 0, 1, ….
// draw takes G = ⌊log U / log(1 − q)⌋ with U uniform on (0, 1) (the top 53
// bits of a word, centred: U = (k + ½)·2⁻⁵³), for which P(G ≥ g) =
// P(U ≤ (1 − q)^g) = (1 − q)^g up to the 2⁻⁵³ grid of U and the rounding of
// the logarithm: an error of order 10⁻¹⁴ relative in each example's
// inclusion probability. So that this error cannot make the accounting at q
// optimistic (ε grows with the sampling rate), the gaps are drawn at rate
// q·(1 − 2⁻³⁰), 10⁻⁹ below q relative: every example is included with
// probability at most q, and within 10⁻⁹ of it relative.
type sampler struct {
	n    int
	logq float64 // log(1 − q·(1 − 2⁻³⁰)) < 0
	idx  []int
}

// newSampler returns a sampler of n examples at rate q ∈ (0, 1).
func newSampler(n int, q float64) sampler {
	return sampler{
		n:    n,
		logq: math.Log1p(-q * (1 - 0x1p-30)),
		idx:  make([]int, 0, 2*int(math.Ceil(q*float64(n)))+16),
	}
}

// draw returns the indices, in increasing order, of a fresh Poisson sample,
// drawing one uniform word from src per included example and one more. The
// result is valid until the next call.
func (p *sampler) draw(src rand.Source) []int {
	p.idx = p.idx[:0]
	for i := 0; ; i++ { // i: the first example not yet decided
		u := (float64(src.Uint64()>>11) + 0.5) * 0x1p-53
		g := math.Log(u) / p.logq // ≥ 0: u < 1 and log(1 − q) < 0
		if g >= float64(p.n-i) {  // the next inclusion is past the last example
			return p.idx
		}
		i += int(g)
		p.idx = append(p.idx, i)
	}
}
