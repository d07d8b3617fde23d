package optim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

// Budget-safety properties over random solver configurations. The
// configurations come from a fixed PCG seed, so the tests are deterministic;
// they make no statistical check.

const (
	safetyN = 120
	safetyD = 6
	safetyK = 3
)

// safetyConfig is a random full-batch solver and its privacy target.
type safetyConfig struct {
	name   string
	solver optim.Solver
	// draws lists, in order, the number of N(0, 1) draws of each release of
	// a run with this shape (for the cancellation test).
	draws []int
}

// randomConfig draws a solver among LS, FC, Newton and full-batch SGD with ε
// log-uniform in [0.1, 10], δ log-uniform in [1e-7, 1e-4], a clip norm in
// [0.5, 2], 1 to 3 steps and, unless equalSplit, random split ratios in
// [0.25, 4]. acc is the calibrating accountant.
func randomConfig(rng *rand.Rand, acc accountant.Accountant, equalSplit bool) safetyConfig {
	eps := 0.1 * math.Pow(100, rng.Float64())
	delta := 1e-7 * math.Pow(1000, rng.Float64())
	clip := 0.5 + 1.5*rng.Float64()
	steps := 1 + rng.IntN(3)
	split := func(k int) []float64 {
		if equalSplit {
			return nil
		}
		s := make([]float64, k)
		for i := range s {
			s[i] = 0.25 * math.Pow(16, rng.Float64())
		}
		return s
	}
	const d, k = safetyD, safetyK
	gram, sums, grad := d*(d+1)/2, d*k, k*d
	repeat := func(v, n int) []int {
		r := make([]int, n)
		for i := range r {
			r[i] = v
		}
		return r
	}
	var c safetyConfig
	switch kind := rng.IntN(4); kind {
	case 0:
		c.solver = &optim.LS{Privacy: optim.Privacy{Epsilon: eps, Delta: delta, Split: split(2), Accountant: acc}, ClipNorm: clip, Global: true}
		c.draws = []int{gram, sums}
	case 1:
		c.solver = &optim.FC{Privacy: optim.Privacy{Epsilon: eps, Delta: delta, Split: split(2), Accountant: acc},
			ClipNorm: clip, GradClipNorm: clip, Steps: steps}
		c.draws = append([]int{gram}, repeat(grad, steps)...)
	case 2:
		c.solver = &optim.Newton{Privacy: optim.Privacy{Epsilon: eps, Delta: delta, Split: split(2), Accountant: acc}, ClipNorm: clip, Steps: steps}
		for range steps {
			c.draws = append(c.draws, grad, k*gram)
		}
	case 3:
		c.solver = &optim.SGD{Privacy: optim.Privacy{Epsilon: eps, Delta: delta, Split: split(1), Accountant: acc},
			Steps: steps, BatchSize: safetyN, GradClipNorm: clip}
		c.draws = repeat(grad, steps)
	}
	c.name = fmt.Sprintf("%T ε=%.3g δ=%.2g clip=%.2f steps=%d", c.solver, eps, delta, clip, steps)
	return c
}

func target(s optim.Solver) (eps, delta float64) {
	switch s := s.(type) {
	case *optim.LS:
		return s.Epsilon, s.Delta
	case *optim.FC:
		return s.Epsilon, s.Delta
	case *optim.Newton:
		return s.Epsilon, s.Delta
	case *optim.SGD:
		return s.Epsilon, s.Delta
	}
	panic(fmt.Sprintf("unknown solver %T", s))
}

// spentTol is the relative tolerance of "the ledger's ε equals the report's":
// both are the same accountant's ε of the same event, but the ledger composes
// its entries in its own grouping, which may round differently in the last
// bits.
const spentTol = 1e-9

// TestLedgerMatchesReport: over random configurations, the ε a fresh ledger
// (budget = the target) records equals the report's ε spent, and neither
// exceeds the target.
func TestLedgerMatchesReport(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 1))
	runs := 40
	if testing.Short() {
		runs = 12
	}
	data := optimtest.Synthetic(safetyN, safetyD, safetyK, 3)
	for i := range runs {
		acc := accountant.Accountant(accountant.GDP{})
		if rng.IntN(3) == 0 {
			acc = accountant.RDP{}
		}
		c := randomConfig(rng, acc, false)
		eps, delta := target(c.solver)
		l, err := accountant.NewLedger(accountant.Budget{Epsilon: eps, Delta: delta}, acc)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.solver.Solve(context.Background(), data, l, dp.NewSeededSource(uint64(i)))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		spent := res.Report.Spent
		switch {
		case math.Abs(l.Epsilon()-spent) > spentTol*eps:
			t.Errorf("%s: ledger ε = %.12g, report ε spent = %.12g", c.name, l.Epsilon(), spent)
		case l.Epsilon() > eps || spent > eps:
			t.Errorf("%s: spent ε = %.12g (ledger %.12g), above the target %g", c.name, spent, l.Epsilon(), eps)
		case spent < 0.9*eps:
			// Calibration meets the target closely: a much smaller ε means the
			// report or the ledger missed releases.
			t.Errorf("%s: spent ε = %.6g, far below the target %g", c.name, spent, eps)
		}
	}
}

// TestReloadedLedgerKeepsCounting: a ledger saved to JSON and reloaded before
// every run keeps counting, and refuses once the budget is spent; the refused
// run keeps what was recorded before it and stays within the budget.
func TestReloadedLedgerKeepsCounting(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	configs := 6
	if testing.Short() {
		configs = 3
	}
	data := optimtest.Synthetic(safetyN, safetyD, safetyK, 4)
	for i := range configs {
		c := randomConfig(rng, nil, false)
		eps, delta := target(c.solver)
		// A budget of about four runs (GDP composition is sublinear in ε).
		budget := accountant.Budget{Epsilon: 3 * eps, Delta: delta}
		l, err := accountant.NewLedger(budget, accountant.GDP{})
		if err != nil {
			t.Fatal(err)
		}
		saved := save(t, l)
		runs, refused := 0, false
		for run := 0; run < 50 && !refused; run++ {
			l, err := accountant.ReadLedger(bytes.NewReader(saved))
			if err != nil {
				t.Fatalf("%s: reloading: %v", c.name, err)
			}
			before := l.Epsilon()
			res, err := c.solver.Solve(context.Background(), data, l, dp.NewSeededSource(uint64(100*i+run)))
			switch {
			case err == nil:
				runs++
				if l.Epsilon() <= before {
					t.Fatalf("%s: run %d: reloaded ledger ε %.6g → %.6g: it did not count", c.name, run, before, l.Epsilon())
				}
				if l.Epsilon() > budget.Epsilon {
					t.Fatalf("%s: run %d: ledger ε %.6g above the budget %g", c.name, run, l.Epsilon(), budget.Epsilon)
				}
				if res == nil {
					t.Fatalf("%s: nil result without error", c.name)
				}
				saved = save(t, l)
			case errors.Is(err, accountant.ErrBudgetExceeded):
				refused = true
				if res != nil {
					t.Errorf("%s: refused run returned a result", c.name)
				}
				// Solvers spend release by release: a run may be refused at a
				// later release after its first ones were recorded (and made).
				// What was recorded before must stay, nothing may pass the
				// budget, and the next run must be refused too.
				old, err := accountant.ReadLedger(bytes.NewReader(saved))
				if err != nil {
					t.Fatal(err)
				}
				prev, now := old.Entries(), l.Entries()
				if len(now) < len(prev) || l.Epsilon() > budget.Epsilon || l.Epsilon() < old.Epsilon() {
					t.Errorf("%s: refused run left %d entries (was %d), ε %.6g (was %.6g, budget %g)",
						c.name, len(now), len(prev), l.Epsilon(), old.Epsilon(), budget.Epsilon)
				}
				for j := range prev {
					if j < len(now) && (now[j].Label != prev[j].Label || now[j].Event != prev[j].Event) {
						t.Errorf("%s: refused run changed entry %d", c.name, j)
					}
				}
				if len(now) > len(prev) {
					t.Logf("%s: the refused run recorded %d of its releases before the refusal", c.name, len(now)-len(prev))
				}
				if _, err := c.solver.Solve(context.Background(), data, l, dp.NewSeededSource(1)); !errors.Is(err, accountant.ErrBudgetExceeded) {
					t.Errorf("%s: a second run after the refusal: %v, want ErrBudgetExceeded", c.name, err)
				}
			default:
				t.Fatalf("%s: run %d: %v", c.name, run, err)
			}
		}
		if !refused {
			t.Fatalf("%s: ledger of budget %g never refused a run", c.name, budget.Epsilon)
		}
		if runs < 3 {
			// ε(k runs) ≤ k·ε, so at least three runs of ε fit in 3ε.
			t.Errorf("%s: refused after %d runs, want at least 3 within a budget of 3ε", c.name, runs)
		}
	}
}

func save(t *testing.T, l *accountant.Ledger) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := l.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cancellingSource passes draws on to src, counting the N(0, 1) draws, and
// cancels a context just before its at-th non-empty Normal call. Like
// optimtest.CountingSource (whose OnNormal fires at the first call only), it
// does not implement dp.GaussianAdder, so all noise goes through Normal.
type cancellingSource struct {
	src    dp.Source
	at     int
	cancel context.CancelFunc
	calls  int
	draws  int
}

func (c *cancellingSource) Uint64() uint64 { return c.src.Uint64() }

func (c *cancellingSource) Normal(dst []float64) {
	if len(dst) > 0 {
		c.calls++
		if c.calls == c.at {
			c.cancel()
		}
	}
	c.draws += len(dst)
	c.src.Normal(dst)
}

// TestCancelledRunRecordsReleases: a run cancelled from inside a noise draw
// (the first, or a later one) leaves a ledger whose ε is at least that of the
// releases whose noise was drawn. With equal split ratios every release has
// the same noise multiplier z, so r releases are exactly μ = √r/z in GDP.
func TestCancelledRunRecordsReleases(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	configs := 16
	if testing.Short() {
		configs = 8
	}
	data := optimtest.Synthetic(safetyN, safetyD, safetyK, 5)
	for i := range configs {
		c := randomConfig(rng, nil, true)
		eps, delta := target(c.solver)
		total := 0
		for _, d := range c.draws {
			total += d
		}
		// An uncancelled run draws exactly what c.draws says.
		full := optimtest.NewCountingSource(dp.NewSeededSource(uint64(i)))
		if _, err := c.solver.Solve(context.Background(), data, nil, full); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if full.Normals() != total {
			t.Fatalf("%s: %d normal draws, want %d (releases %v)", c.name, full.Normals(), total, c.draws)
		}
		ev, err := c.solver.Plan(safetyN)
		if err != nil {
			t.Fatal(err)
		}
		mu, err := accountant.Mu(ev)
		if err != nil {
			t.Fatal(err)
		}
		z := math.Sqrt(float64(len(c.draws))) / mu // equal noise multipliers

		ctx, cancel := context.WithCancel(context.Background())
		src := &cancellingSource{src: dp.NewSeededSource(uint64(i)), at: 1 + rng.IntN(2), cancel: cancel}
		l, err := accountant.NewLedger(accountant.Budget{Epsilon: eps, Delta: delta}, accountant.GDP{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.solver.Solve(ctx, data, l, src)
		cancel()
		// Releases whose noise was drawn, even in part.
		released, sum := 0, 0
		for _, d := range c.draws {
			if src.draws <= sum {
				break
			}
			released++
			sum += d
		}
		if err == nil {
			// The cancellation came during the last release: the run was complete.
			if released != len(c.draws) || res == nil {
				t.Fatalf("%s: no error after cancellation, %d of %d releases drawn", c.name, released, len(c.draws))
			}
		} else if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: cancelled run: %v, want context.Canceled", c.name, err)
		} else if res != nil {
			t.Errorf("%s: cancelled run returned a result", c.name)
		}
		if released == 0 {
			t.Fatalf("%s: cancelled from a noise draw, but no noise drawn", c.name)
		}
		want, err := accountant.GaussianEpsilon(math.Sqrt(float64(released))/z, delta)
		if err != nil {
			t.Fatal(err)
		}
		if l.Epsilon() < want*(1-spentTol) {
			t.Errorf("%s: cancelled at Normal call %d after %d of %d releases: ledger ε = %.6g, want ≥ %.6g",
				c.name, src.at, released, len(c.draws), l.Epsilon(), want)
		}
	}
}
