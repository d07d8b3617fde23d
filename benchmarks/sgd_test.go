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
// more workers: during step t the Team draws step t+1's noise, in pieces of
// dp.NormalsChunk draws, and step t+2's sample, whenever one of its workers
// (the caller included) has no part of the gradient to compute, and its
// goroutines stay awake between steps. These are the same draws from the
// same source in the same order (the randomness does not depend on the
// data), so the batches and the noise are the materialised loop's, which
// draws them in turn, as before.
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
	idx3   []int            // identity on a Team: a third sample buffer
	noiseB []float64        // identity on a Team: the next step's noise
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

// runAhead is run for the norm identity, with the randomness drawn ahead:
// on the batch's Team a step ahead (runTeam), else each step's noise and the
// next step's sample on a fresh goroutine during the step's gradient. The
// same draws in the same order as run's.
func (e *epoch) runAhead(steps int) error {
	const clip = 1.0
	src := dp.NewSeededSource(1)
	n := e.x.Rows
	e.w.Zero()
	q := float64(e.bs) / float64(n)
	logq := math.Log1p(-q)
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
	if team := e.batch.Team; team != nil {
		return e.runTeam(steps, team, src, sample)
	}
	var helper sync.WaitGroup
	for t := range steps {
		helper.Go(func() {
			src.Normal(e.noise)
			if t+1 < steps {
				e.next = sample(e.next)
			}
		})
		var err error
		if len(e.idx) == 0 {
			e.grad.Zero()
		} else {
			err = losses.EvalClipSum(&e.batch, e.loss, e.x, e.labels, e.idx, e.w, nil, clip, e.grad, nil, 0)
		}
		helper.Wait()
		if err != nil {
			return err
		}
		e.update(e.noise)
		e.idx, e.next = e.next, e.idx
	}
	return nil
}

// update is the plain SGD step from the clipped sum in grad and the noise.
func (e *epoch) update(noise []float64) {
	const z, clip = 1.0, 1.0
	eta := 1.0 / float64(e.bs)
	sum := e.grad.RawMatrix().Data
	w := e.w.RawMatrix().Data
	for j, v := range noise {
		w[j] -= eta * (sum[j] + z*clip*v)
	}
}

// runTeam is runAhead on a Team, as optim.SGD runs: during step t the Team
// draws step t+1's noise, in pieces of dp.NormalsChunk draws, and step
// t+2's sample, whenever a worker has no part of the gradient to compute;
// step t ends waiting for step t's noise and step t+1's sample, handed over
// during step t−1. The draws are run's, in run's order.
func (e *epoch) runTeam(steps int, team *linalg.Team, src dp.Source, sample func([]int) []int) error {
	const clip = 1.0
	if e.noiseB == nil {
		e.noiseB = make([]float64, len(e.noise))
	}
	noise := [2][]float64{e.noise, e.noiseB}
	ring := [3][]int{e.idx, e.next, e.idx3}
	handOver := func(u int) int {
		c := 0
		if u < steps {
			buf := noise[u%2]
			for lo := 0; lo < len(buf); lo += dp.NormalsChunk {
				piece := buf[lo:min(lo+dp.NormalsChunk, len(buf))]
				team.Go(func() { src.Normal(piece) })
				c++
			}
		}
		if u+1 < steps {
			team.Go(func() { ring[(u+1)%3] = sample(ring[(u+1)%3]) })
			c++
		}
		return c
	}
	handOver(0)
	for t := range steps {
		team.Hurry() // step t's noise and step t+1's sample first
		handed := handOver(t + 1)
		var err error
		if rows := ring[t%3]; len(rows) == 0 {
			e.grad.Zero()
		} else {
			err = losses.EvalClipSum(&e.batch, e.loss, e.x, e.labels, rows, e.w, nil, clip, e.grad, nil, 0)
		}
		team.WaitFor(handed)
		if err != nil {
			team.Wait()
			return err
		}
		e.update(noise[t%2])
	}
	e.idx, e.next, e.idx3 = ring[0], ring[1], ring[2] // keep the buffers
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
