package benchmarks

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
	"github.com/dpopt/dpopt/optim"
	"gonum.org/v1/gonum/mat"
)

// BenchmarkDPSGDEpoch times one epoch of DP-SGD — Poisson sampling with
// expected batch 256, n/256 steps, one-vs-all sigmoid with the paper's fixed
// bias, clip norm 1, noise multiplier 1, plain SGD update — at the MNIST
// shape. The methods identity, identity64 and materialised run the same loop
// (same batches, same noise) and differ only in the clipped gradient sum:
//
//   - identity: losses.EvalClipSum on the sampled row indices — the norm
//     identity ‖r_i x_iᵀ‖ = ‖r_i‖‖x_i‖, fused with the two GEMMs, each
//     sampled row read from the data set once — in linalg.Float32, the
//     precision optim.SGD uses by default;
//   - identity64: the same in linalg.Float64 (exact products);
//   - materialised, the baseline: the sampled rows gathered into a
//     block, losses Eval on it, then per-example gradients materialised, their
//     norms, and the clipped sum (the materialiser of BenchmarkPerExample).
//
// The identity methods run on a linalg.Team, as optim.SGD does with two or
// more workers: each step's noise, in pieces of dp.NormalsChunk draws, and
// the next step's sample are handed to the Team, whose goroutines draw them
// in turn before they join the step's gradient (the caller draws what is
// left when it has no part of the gradient to compute) — the same draws
// from the same source in the same order (the randomness does not depend on
// the data), so the batches and the noise are the materialised loop's — and
// whose goroutines stay awake between steps. The materialised loop draws
// them in turn, as before.
//
// method=solver is optim.SGD itself with RDP accounting (its default PLD
// calibration and report cost seconds that do not depend on the gradient
// method).
func BenchmarkDPSGDEpoch(b *testing.B) {
	const batchSize = 256
	for _, s := range shapes[:1] { // MNIST; the materialised CIFAR-100 epoch takes minutes
		x, labels := problem(s.n, s.d, s.k)
		steps := s.n / batchSize
		name := fmt.Sprintf("%s/n=%d/d=%d/K=%d/B=%d/steps=%d", s.name, s.n, s.d, s.k, batchSize, steps)
		for _, method := range []string{"identity", "identity64", "materialised"} {
			b.Run("method="+method+"/"+name, func(b *testing.B) {
				e := newEpoch(x, labels, s.k, batchSize, method == "materialised")
				if method == "identity" {
					e.batch.Precision = linalg.Float32
				}
				if e.m == nil {
					team, err := linalg.NewTeam(0)
					if err != nil {
						b.Fatal(err)
					}
					defer team.Close()
					e.batch.Team = team
				}
				t := startTimer()
				for b.Loop() {
					if err := e.run(steps); err != nil {
						b.Fatal(err)
					}
				}
				t.report(b, 0)
			})
		}
		b.Run("method=solver/"+name, func(b *testing.B) {
			data := &optim.Data{X: x, Labels: labels, Classes: s.k}
			sgd := &optim.SGD{
				Privacy:      optim.Privacy{Epsilon: 1, Delta: 1e-5, Accountant: accountant.RDP{}},
				Steps:        steps,
				BatchSize:    batchSize,
				GradClipNorm: 1,
				Loss:         losses.Sigmoid{FixedBias: losses.PaperFixedBias},
			}
			t := startTimer()
			for b.Loop() {
				if _, err := sgd.Solve(context.Background(), data, nil, dp.NewSeededSource(1)); err != nil {
					b.Fatal(err)
				}
			}
			t.report(b, 0)
		})
	}
}

// An epoch is a hand-written DP-SGD loop for BenchmarkDPSGDEpoch.
type epoch struct {
	x      *linalg.Matrix32
	labels []int
	k, bs  int
	m      *materialiser // nil: norm identity
	loss   losses.Loss
	w      *mat.Dense
	grad   *mat.Dense
	noise  []float64
	idx    []int
	next   []int            // identity: the next step's sample
	serial bool             // identity: draw in turn, as the materialised loop (for TestEpochAhead)
	xb     *linalg.Matrix32 // materialised: the gathered rows
	yb     []int
	batch  losses.Batch
}

func newEpoch(x *linalg.Matrix32, labels []int, k, bs int, materialise bool) *epoch {
	e := &epoch{x: x, labels: labels, k: k, bs: bs, loss: losses.Sigmoid{FixedBias: losses.PaperFixedBias},
		w: mat.NewDense(k, x.Cols, nil), grad: mat.NewDense(k, x.Cols, nil), noise: make([]float64, k*x.Cols),
		xb: &linalg.Matrix32{Cols: x.Cols}}
	if materialise {
		e.m = newMaterialiser(2*bs, x.Cols, k)
	}
	return e
}

// run does steps DP-SGD steps from W = 0 with a fresh seeded source.
func (e *epoch) run(steps int) error {
	if e.m == nil && !e.serial {
		return e.runAhead(steps)
	}
	const z, clip = 1.0, 1.0
	src := dp.NewSeededSource(1)
	n, d := e.x.Rows, e.x.Cols
	e.w.Zero()
	q := float64(e.bs) / float64(n)
	logq := math.Log1p(-q)
	eta := 1.0 / float64(e.bs)
	for range steps {
		// Poisson sampling by geometric gaps: each example independently with
		// probability q, in O(batch) draws.
		e.idx = e.idx[:0]
		for i := -1; ; {
			u := (float64(src.Uint64()>>11) + 0.5) * 0x1p-53
			i += 1 + int(math.Log(u)/logq)
			if i >= n || i < 0 {
				break
			}
			e.idx = append(e.idx, i)
		}
		var sum []float64
		switch {
		case len(e.idx) == 0:
			e.grad.Zero()
			sum = e.grad.RawMatrix().Data
		case e.m == nil:
			if err := losses.EvalClipSum(&e.batch, e.loss, e.x, e.labels, e.idx, e.w, nil, clip, e.grad, nil, 0); err != nil {
				return err
			}
			sum = e.grad.RawMatrix().Data
		default:
			e.xb.Rows, e.xb.Data, e.yb = len(e.idx), e.xb.Data[:0], e.yb[:0]
			for _, i := range e.idx {
				e.xb.Data = append(e.xb.Data, e.x.Row(i)...)
				e.yb = append(e.yb, e.labels[i])
			}
			if err := e.loss.Eval(&e.batch, e.xb, e.yb, e.w, nil, 0); err != nil {
				return err
			}
			if len(e.idx) > e.m.chunk {
				e.m = newMaterialiser(len(e.idx), d, e.k)
			}
			e.m.clipSum(e.xb, e.batch.R, clip)
			sum = e.m.sum
		}
		src.Normal(e.noise)
		w := e.w.RawMatrix().Data
		for j, v := range e.noise {
			w[j] -= eta * (sum[j] + z*clip*v)
		}
	}
	return nil
}

// runAhead is run for the norm identity, with each step's noise and the next
// step's sample drawn on the batch's Team (a fresh goroutine if it has none)
// during the step's gradient: the same draws in the same order as run's.
func (e *epoch) runAhead(steps int) error {
	const z, clip = 1.0, 1.0
	src := dp.NewSeededSource(1)
	n := e.x.Rows
	e.w.Zero()
	q := float64(e.bs) / float64(n)
	logq := math.Log1p(-q)
	eta := 1.0 / float64(e.bs)
	sample := func(idx []int) []int {
		idx = idx[:0]
		for i := -1; ; {
			u := (float64(src.Uint64()>>11) + 0.5) * 0x1p-53
			i += 1 + int(math.Log(u)/logq)
			if i >= n || i < 0 {
				return idx
			}
			idx = append(idx, i)
		}
	}
	e.idx = sample(e.idx)
	var helper sync.WaitGroup
	team := e.batch.Team
	for t := range steps {
		draw := func() {
			src.Normal(e.noise)
			if t+1 < steps {
				e.next = sample(e.next)
			}
		}
		if team != nil {
			// In pieces, as optim.SGD: a worker with nothing else to do
			// draws the next piece.
			for lo := 0; lo < len(e.noise); lo += dp.NormalsChunk {
				piece := e.noise[lo:min(lo+dp.NormalsChunk, len(e.noise))]
				team.Go(func() { src.Normal(piece) })
			}
			if t+1 < steps {
				team.Go(func() { e.next = sample(e.next) })
			}
		} else {
			helper.Go(draw)
		}
		var err error
		if len(e.idx) == 0 {
			e.grad.Zero()
		} else {
			err = losses.EvalClipSum(&e.batch, e.loss, e.x, e.labels, e.idx, e.w, nil, clip, e.grad, nil, 0)
		}
		if team != nil {
			team.Wait()
		} else {
			helper.Wait()
		}
		if err != nil {
			return err
		}
		sum := e.grad.RawMatrix().Data
		w := e.w.RawMatrix().Data
		for j, v := range e.noise {
			w[j] -= eta * (sum[j] + z*clip*v)
		}
		e.idx, e.next = e.next, e.idx
	}
	return nil
}

// TestEpochAhead: the identity loop with its randomness drawn ahead, on a
// helper goroutine or on a Team, gives the model of the same loop drawing it
// in turn, bit for bit.
func TestEpochAhead(t *testing.T) {
	x, labels := problem(3000, 50, 10)
	a := newEpoch(x, labels, 10, 200, false)
	b := newEpoch(x, labels, 10, 200, false)
	c := newEpoch(x, labels, 10, 200, false)
	b.serial = true
	team, err := linalg.NewTeam(2)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	c.batch.Team = team
	for _, e := range []*epoch{a, b, c} {
		if err := e.run(40); err != nil {
			t.Fatal(err)
		}
	}
	if !mat.Equal(a.w, b.w) {
		t.Error("drawing ahead changes the model")
	}
	if !mat.Equal(c.w, b.w) {
		t.Error("drawing ahead on a Team changes the model")
	}
	if mat.Norm(a.w, 2) == 0 {
		t.Error("zero model")
	}
}
