package optimtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/optim"
)

// Config describes the solver Run checks and the data it runs on.
type Config struct {
	// New returns the solver under test with privacy target p. It is called
	// with private targets and with Epsilon = +Inf, and must return a new
	// solver each time (Run may set its Workers). Required.
	New func(p optim.Privacy) optim.Solver
	// Data is the training data. Nil means Synthetic(DefaultN, DefaultDim,
	// DefaultClasses, 1). Run never modifies it, and checks that Solve does not.
	Data *optim.Data
	// Epsilon and Delta are the private target of the subtests. Zero means
	// ε = 1 and δ = 1e-5.
	Epsilon, Delta float64
	// Accountant is passed to New in Privacy.Accountant; nil leaves the
	// solver's default. The ledgers of the subtests use the accountant the
	// solver reports (Report.Accountant), which must then be registered.
	Accountant accountant.Accountant
	// SetWorkers sets the number of goroutines of s and reports whether s has
	// one. Nil means: set the int field named Workers by reflection, if s is a
	// pointer to a struct that has one.
	SetWorkers func(s optim.Solver, workers int) bool
	// Draws, if not nil, returns the number of N(0, 1) draws a private Solve
	// makes on n examples of dimension d in k classes; Run checks it exactly.
	// Nil means Run checks only that every release drew at least once.
	Draws func(n, d, k int) int
	// Sampled says the solver draws uniform bits from its Source even when it
	// is non-private (Poisson sampling, shuffles). If false, a non-private
	// Solve must not touch its Source at all.
	Sampled bool
	// MinAccuracy is the training accuracy the non-private model must reach.
	// Zero means 0.9 on the default data and no check on Config.Data; a
	// negative value disables the check.
	MinAccuracy float64
	// Exact, if not nil, is called with the data and the result of a
	// non-private run, to compare the model with a closed form or a naive
	// computation (STYLE: "exact first").
	Exact func(t *testing.T, d *optim.Data, res *optim.Result)
}

// Tolerances of the suite.
const (
	// epsTol is the relative tolerance on ε values that are the same
	// computation on equivalent events (a plan and the ledger's grouping of
	// the same releases): only summation order may differ.
	epsTol = 1e-9
)

// suite is one run of Run.
type suite struct {
	c          Config
	data       *optim.Data
	orig       *optim.Data // copy of data, to check Solve leaves it unchanged
	n, d, k    int
	eps, delta float64
	acc        accountant.Accountant // accountant of the private solver's runs
}

// Run runs the conformance suite on the solver c describes; see the package
// documentation for its subtests.
func Run(t *testing.T, c Config) {
	t.Helper()
	if c.New == nil {
		t.Fatal("optimtest: Config.New is nil")
	}
	s := &suite{c: c, data: c.Data, eps: c.Epsilon, delta: c.Delta}
	if s.data == nil {
		s.data = Synthetic(DefaultN, DefaultDim, DefaultClasses, 1)
		if s.c.MinAccuracy == 0 {
			s.c.MinAccuracy = 0.9
		}
	}
	if err := s.data.Validate(); err != nil {
		t.Fatalf("optimtest: Config.Data: %v", err)
	}
	s.orig = clone(s.data)
	s.n, s.d, s.k = s.data.X.Rows, s.data.X.Cols, s.data.Classes
	if s.eps == 0 {
		s.eps = 1
	}
	if s.delta == 0 {
		s.delta = 1e-5
	}

	// A reference run with a ledger of the solver's own making says which
	// accountant the solver uses.
	res, err := s.solve(t, s.private(), s.data, nil, dp.NewSeededSource(1))
	if err != nil {
		t.Fatalf("private Solve (ε = %g, δ = %g) with a nil ledger: %v", s.eps, s.delta, err)
	}
	s.checkResult(t, "private Solve", res)
	switch {
	case c.Accountant != nil:
		s.acc = c.Accountant
	default:
		if s.acc, err = accountant.AccountantByName(res.Report.Accountant); err != nil {
			t.Fatalf("Report.Accountant = %q: %v", res.Report.Accountant, err)
		}
	}

	t.Run("NonPrivateDeterministic", s.nonPrivateDeterministic)
	t.Run("Reproducible", s.reproducible)
	t.Run("RecordsPlan", s.recordsPlan)
	t.Run("RefusesOverBudget", s.refusesOverBudget)
	t.Run("Cancellation", s.cancellation)
	t.Run("FreshNoise", s.freshNoise)
	t.Run("BadInput", s.badInput)
	t.Run("Concurrent", s.concurrent)
}

// private returns a new solver with the suite's private target.
func (s *suite) private() optim.Solver {
	return s.c.New(optim.Privacy{Epsilon: s.eps, Delta: s.delta, Accountant: s.c.Accountant})
}

// nonPrivate returns a new solver with ε = +Inf (and δ = 0, which a
// non-private target ignores).
func (s *suite) nonPrivate() optim.Solver {
	return s.c.New(optim.Privacy{Epsilon: math.Inf(1), Accountant: s.c.Accountant})
}

// ledger returns an empty ledger with budget (eps, s.delta) under s.acc.
func (s *suite) ledger(t *testing.T, eps float64) *accountant.Ledger {
	t.Helper()
	l, err := accountant.NewLedger(accountant.Budget{Epsilon: eps, Delta: s.delta}, s.acc)
	if err != nil {
		t.Fatalf("optimtest: NewLedger(ε = %g, δ = %g): %v", eps, s.delta, err)
	}
	return l
}

// errPanic is returned by solve and plan when the solver panicked.
var errPanic = errors.New("optimtest: solver panicked")

// solve calls sol.Solve with a background context, reporting a panic as a
// test error, and checks the contract between result and error and that the
// data was left unchanged.
func (s *suite) solve(t *testing.T, sol optim.Solver, d *optim.Data, l *accountant.Ledger, src dp.Source) (*optim.Result, error) {
	t.Helper()
	return s.solveCtx(t, context.Background(), sol, d, l, src)
}

func (s *suite) solveCtx(t *testing.T, ctx context.Context, sol optim.Solver, d *optim.Data, l *accountant.Ledger, src dp.Source) (res *optim.Result, err error) {
	t.Helper()
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Solve panicked: %v\n%s", r, debug.Stack())
				res, err = nil, errPanic
			}
		}()
		res, err = sol.Solve(ctx, d, l, src)
	}()
	switch {
	case err != nil && res != nil:
		t.Errorf("Solve returned a result with error %v; want no result", err)
	case err == nil && res == nil:
		t.Errorf("Solve returned neither a result nor an error")
		err = errors.New("optimtest: no result")
	}
	if d == s.data && !sameData(s.data, s.orig) {
		t.Fatalf("Solve modified its Data")
	}
	return res, err
}

// plan calls sol.Plan(n), reporting a panic as a test error.
func plan(t *testing.T, sol optim.Solver, n int) (e accountant.Event, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("Plan(%d) panicked: %v\n%s", n, r, debug.Stack())
			e, err = nil, errPanic
		}
	}()
	e, err = sol.Plan(n)
	if err == nil && e == nil {
		t.Errorf("Plan(%d) returned neither an event nor an error", n)
		err = errors.New("optimtest: no event")
	}
	return e, err
}

// checkResult checks the shape and finiteness of a result on s.data.
func (s *suite) checkResult(t *testing.T, what string, res *optim.Result) {
	t.Helper()
	if res.Model == nil || res.Model.W == nil || res.Report == nil {
		t.Fatalf("%s: result with nil Model, W or Report", what)
	}
	if k, d := res.Model.W.Dims(); k != s.k || d != s.d {
		t.Errorf("%s: W is %d×%d, want %d×%d", what, k, d, s.k, s.d)
	}
	if b := res.Model.Bias; b != nil && len(b) != s.k {
		t.Errorf("%s: %d biases, want %d (or nil)", what, len(b), s.k)
	}
	if !finite(res.Model) {
		t.Errorf("%s: model has a NaN or infinite entry", what)
	}
	r := res.Report
	if r.N != s.n || r.Dim != s.d || r.Classes != s.k {
		t.Errorf("%s: report says n, d, K = %d, %d, %d; want %d, %d, %d", what, r.N, r.Dim, r.Classes, s.n, s.d, s.k)
	}
}

func finite(m *optim.Model) bool {
	k, d := m.W.Dims()
	for i := range k {
		for j := range d {
			if v := m.W.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	for _, v := range m.Bias {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// diff returns "" if a and b have bit-identical models and the same report
// (apart from the running time, and the source and seed if ignoreSource), or
// the first difference.
func diff(a, b *optim.Result, ignoreSource bool) string {
	ka, da := a.Model.W.Dims()
	kb, db := b.Model.W.Dims()
	if ka != kb || da != db {
		return fmt.Sprintf("W is %d×%d and %d×%d", ka, da, kb, db)
	}
	for i := range ka {
		for j := range da {
			if x, y := a.Model.W.At(i, j), b.Model.W.At(i, j); math.Float64bits(x) != math.Float64bits(y) {
				return fmt.Sprintf("W[%d, %d] = %v and %v", i, j, x, y)
			}
		}
	}
	if len(a.Model.Bias) != len(b.Model.Bias) {
		return fmt.Sprintf("%d and %d biases", len(a.Model.Bias), len(b.Model.Bias))
	}
	for i, x := range a.Model.Bias {
		if y := b.Model.Bias[i]; math.Float64bits(x) != math.Float64bits(y) {
			return fmt.Sprintf("Bias[%d] = %v and %v", i, x, y)
		}
	}
	// Compare the reports in their JSON form, which spells out the seed and
	// encodes NaN and ±Inf, apart from the running time.
	ra, rb := *a.Report, *b.Report
	ra.Seconds, rb.Seconds = 0, 0
	if ignoreSource {
		ra.Source, ra.Seed, rb.Source, rb.Seed = "", nil, "", nil
	}
	ja, erra := json.Marshal(&ra)
	jb, errb := json.Marshal(&rb)
	if erra != nil || errb != nil {
		return fmt.Sprintf("reports do not encode: %v, %v", erra, errb)
	}
	if !bytes.Equal(ja, jb) {
		return fmt.Sprintf("reports differ:\n%s\n%s", ja, jb)
	}
	return ""
}

// relClose reports whether a and b agree to relative tolerance tol.
func relClose(a, b, tol float64) bool {
	return a == b || math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}

// setWorkers sets the solver's number of goroutines, by Config.SetWorkers
// or by reflection.
func (s *suite) setWorkers(sol optim.Solver, w int) bool {
	if s.c.SetWorkers != nil {
		return s.c.SetWorkers(sol, w)
	}
	v := reflect.ValueOf(sol)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return false
	}
	f := v.Elem().FieldByName("Workers")
	if !f.IsValid() || !f.CanSet() || f.Kind() != reflect.Int {
		return false
	}
	f.SetInt(int64(w))
	return true
}

// nonPrivateDeterministic: ε = +Inf runs are noise-free, repeatable, have
// no plan and refuse a finite ledger.
func (s *suite) nonPrivateDeterministic(t *testing.T) {
	sol := s.nonPrivate()
	if _, err := plan(t, sol, s.n); !errors.Is(err, optim.ErrNonPrivate) {
		t.Errorf("non-private Plan(%d): got error %v, want one wrapping optim.ErrNonPrivate", s.n, err)
	}
	src1 := NewCountingSource(dp.NewSeededSource(1))
	res1, err := s.solve(t, sol, s.data, nil, src1)
	if err != nil {
		t.Fatalf("non-private Solve: %v", err)
	}
	s.checkResult(t, "non-private Solve", res1)
	if got := src1.Normals(); got != 0 {
		t.Errorf("non-private Solve drew %d normals, want 0", got)
	}
	if got := src1.Uniforms(); got != 0 && !s.c.Sampled {
		t.Errorf("non-private Solve drew %d uniform words, want 0 (Config.Sampled is false)", got)
	}
	if r := res1.Report; !math.IsInf(r.Epsilon, 1) || !math.IsInf(r.Spent, 1) {
		t.Errorf("non-private report: got Epsilon = %g, Spent = %g; want +Inf, +Inf", r.Epsilon, r.Spent)
	}
	// Without sampling the seed must not matter; with it, the same seed gives the same run.
	seed2 := uint64(2)
	if s.c.Sampled {
		seed2 = 1
	}
	res2, err := s.solve(t, s.nonPrivate(), s.data, nil, dp.NewSeededSource(seed2))
	if err != nil {
		t.Fatalf("second non-private Solve: %v", err)
	}
	if d := diff(res1, res2, true); d != "" {
		t.Errorf("two non-private runs differ: %s", d)
	}

	src3 := NewCountingSource(dp.NewSeededSource(3))
	l := s.ledger(t, s.eps)
	res3, err := s.solve(t, s.nonPrivate(), s.data, l, src3)
	if !errors.Is(err, accountant.ErrBudgetExceeded) && !errors.Is(err, optim.ErrNonPrivate) {
		t.Errorf("non-private Solve with a ledger of budget ε = %g: got error %v, want one wrapping accountant.ErrBudgetExceeded or optim.ErrNonPrivate", s.eps, err)
	}
	if res3 != nil {
		t.Errorf("non-private Solve with a finite ledger returned a result")
	}
	if got := len(l.Entries()); got != 0 {
		t.Errorf("non-private Solve with a finite ledger recorded %d entries, want 0", got)
	}

	if s.c.MinAccuracy > 0 {
		acc, err := res1.Model.Accuracy(s.data, 0)
		if err != nil {
			t.Fatalf("Accuracy: %v", err)
		}
		if acc < s.c.MinAccuracy {
			t.Errorf("non-private training accuracy = %.4f, want ≥ %.4f", acc, s.c.MinAccuracy)
		}
	}
	if s.c.Exact != nil {
		s.c.Exact(t, s.data, res1)
	}
}

// reproducible: same seed, same run for any Workers; new seed, new run.
func (s *suite) reproducible(t *testing.T) {
	const seed = 7
	run := func(what string, workers int, seed uint64) *optim.Result {
		t.Helper()
		sol := s.private()
		if workers > 0 && !s.setWorkers(sol, workers) {
			return nil
		}
		res, err := s.solve(t, sol, s.data, nil, dp.NewSeededSource(seed))
		if err != nil {
			t.Fatalf("%s: Solve: %v", what, err)
		}
		s.checkResult(t, what, res)
		return res
	}
	base := run("default Workers", 0, seed)
	if _, ok := dp.NewSeededSource(seed).(dp.Seeded); ok {
		if r := base.Report; r.Source != "seeded" || r.Seed == nil || *r.Seed != seed {
			t.Errorf("report of a run with dp.NewSeededSource(%d): Source %q, Seed %v; want \"seeded\", %d", seed, r.Source, r.Seed, seed)
		}
	}
	if d := diff(base, run("default Workers, again", 0, seed), false); d != "" {
		t.Errorf("two runs with seed %d differ: %s", seed, d)
	}
	for _, w := range []int{1, 2, 3} {
		res := run(fmt.Sprintf("Workers = %d", w), w, seed)
		if res == nil {
			t.Logf("the solver has no Workers field (Config.SetWorkers is nil): only one worker count checked")
			break
		}
		if d := diff(base, res, false); d != "" {
			t.Errorf("seed %d with Workers = %d differs from default Workers: %s", seed, w, d)
		}
	}
	other := run("another seed", 0, seed+1)
	if diff(base, other, false) == "" {
		t.Errorf("seeds %d and %d gave identical runs; want different noise", seed, seed+1)
	} else if eq, _ := sameW(base, other); eq {
		t.Errorf("seeds %d and %d gave identical models; want different noise", seed, seed+1)
	}
}

// sameW reports whether two results have bit-identical W and Bias.
func sameW(a, b *optim.Result) (bool, string) {
	ra, rb := *a, *b
	ra.Report, rb.Report = &optim.Report{}, &optim.Report{}
	d := diff(&ra, &rb, true)
	return d == "", d
}

// recordsPlan: the ledger records exactly the planned event, the report says
// so, and the target is never exceeded.
func (s *suite) recordsPlan(t *testing.T) {
	sol := s.private()
	ev, err := plan(t, sol, s.n)
	if err != nil {
		t.Fatalf("Plan(%d): %v", s.n, err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("Plan(%d) returned an invalid event: %v", s.n, err)
	}
	ev2, err := plan(t, s.private(), s.n)
	if err != nil {
		t.Fatalf("second Plan(%d): %v", s.n, err)
	}
	b1, err1 := accountant.MarshalEvent(ev)
	b2, err2 := accountant.MarshalEvent(ev2)
	if err1 != nil || err2 != nil || !bytes.Equal(b1, b2) {
		t.Errorf("two calls of Plan(%d) differ:\n%s (%v)\n%s (%v)", s.n, b1, err1, b2, err2)
	}
	planEps, err := s.acc.Epsilon(ev, s.delta)
	if err != nil {
		t.Fatalf("%s accountant on the plan: %v", s.acc.Name(), err)
	}
	if planEps > s.eps*(1+epsTol) {
		t.Errorf("plan spends ε = %.12g, over the target %g", planEps, s.eps)
	}

	l := s.ledger(t, s.eps)
	res, err := s.solve(t, sol, s.data, l, dp.NewSeededSource(5))
	if err != nil {
		t.Fatalf("Solve with a ledger of budget ε = %g: %v", s.eps, err)
	}
	s.checkResult(t, "private Solve", res)
	if len(l.Entries()) == 0 {
		t.Fatalf("Solve recorded nothing in its ledger")
	}
	got, err := s.acc.Epsilon(l.Event(), s.delta)
	if err != nil {
		t.Fatalf("%s accountant on the ledger's event: %v", s.acc.Name(), err)
	}
	if !relClose(got, planEps, epsTol) {
		t.Errorf("ledger's event has ε = %.12g, want Plan's %.12g (%s, δ = %g)", got, planEps, s.acc.Name(), s.delta)
	}
	if spent := l.Epsilon(); !relClose(spent, planEps, epsTol) || spent > s.eps*(1+epsTol) {
		t.Errorf("ledger spent ε = %.12g, want Plan's %.12g ≤ target %g", spent, planEps, s.eps)
	}

	r := res.Report
	if r.Epsilon != s.eps || r.Delta != s.delta {
		t.Errorf("report target (%g, %g), want (%g, %g)", r.Epsilon, r.Delta, s.eps, s.delta)
	}
	if r.Accountant != s.acc.Name() {
		t.Errorf("report accountant %q, want %q", r.Accountant, s.acc.Name())
	}
	if !relClose(r.Spent, planEps, epsTol) {
		t.Errorf("report Spent = %.12g, want Plan's ε = %.12g", r.Spent, planEps)
	}
	if v, ok := r.Epsilons[s.acc.Name()]; !ok || !relClose(v, planEps, epsTol) {
		t.Errorf("report Epsilons[%q] = %.12g (present: %t), want %.12g", s.acc.Name(), v, ok, planEps)
	}
	for name, v := range r.Epsilons {
		acc, err := accountant.AccountantByName(name)
		if err != nil {
			t.Errorf("report Epsilons names unknown accountant %q", name)
			continue
		}
		want, err := acc.Epsilon(ev, s.delta)
		if err != nil || !relClose(v, want, epsTol) {
			t.Errorf("report Epsilons[%q] = %.12g, want the plan's %.12g (%v)", name, v, want, err)
		}
	}
	// The releases of the report, accounted for as `dpopt account` does, are the plan.
	if len(r.Releases) == 0 {
		t.Fatalf("report lists no releases")
	}
	evs := make([]accountant.Event, len(r.Releases))
	for i, rel := range r.Releases {
		if !(rel.NoiseMultiplier > 0) || math.IsInf(rel.NoiseMultiplier, 0) || rel.Count < 1 {
			t.Fatalf("release %q: noise multiplier %g, count %d; want positive", rel.Label, rel.NoiseMultiplier, rel.Count)
		}
		if !relClose(rel.Sigma, rel.NoiseMultiplier*rel.Sensitivity, 1e-12) {
			t.Errorf("release %q: Sigma = %g, want NoiseMultiplier·Sensitivity = %g", rel.Label, rel.Sigma, rel.NoiseMultiplier*rel.Sensitivity)
		}
		var e accountant.Event = accountant.Gaussian{NoiseMultiplier: rel.NoiseMultiplier}
		if rel.SamplingRate < 1 {
			e = accountant.PoissonSampled{Rate: rel.SamplingRate, Event: e}
		}
		evs[i] = accountant.Repeated{Event: e, Count: rel.Count}
	}
	if fromReport, err := s.acc.Epsilon(accountant.Composed{Events: evs}, s.delta); err != nil || !relClose(fromReport, planEps, epsTol) {
		t.Errorf("the report's releases spend ε = %.12g, want Plan's %.12g (%v)", fromReport, planEps, err)
	}

	// The ledger survives a JSON round trip with the same ε.
	if _, err := accountant.AccountantByName(s.acc.Name()); err == nil {
		var buf bytes.Buffer
		if _, err := l.WriteTo(&buf); err != nil {
			t.Fatalf("Ledger.WriteTo: %v", err)
		}
		l2, err := accountant.ReadLedger(&buf)
		if err != nil {
			t.Fatalf("ReadLedger: %v", err)
		}
		if !relClose(l2.Epsilon(), l.Epsilon(), epsTol) {
			t.Errorf("ledger read back spends ε = %.12g, want %.12g", l2.Epsilon(), l.Epsilon())
		}
	}
}

// refusesOverBudget: a ledger that cannot afford the plan refuses it; Solve
// fails with ErrBudgetExceeded and releases nothing unrecorded.
func (s *suite) refusesOverBudget(t *testing.T) {
	ev, err := plan(t, s.private(), s.n)
	if err != nil {
		t.Fatalf("Plan(%d): %v", s.n, err)
	}
	planEps, err := s.acc.Epsilon(ev, s.delta)
	if err != nil {
		t.Fatalf("%s accountant on the plan: %v", s.acc.Name(), err)
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) *accountant.Ledger
	}{
		{"HalfBudget", func(t *testing.T) *accountant.Ledger { return s.ledger(t, planEps/2) }},
		{"PartlySpent", func(t *testing.T) *accountant.Ledger {
			l := s.ledger(t, s.eps)
			z, err := accountant.Calibrate(s.acc, accountant.FullBatch(1), s.eps/2, s.delta)
			if err != nil {
				t.Fatalf("optimtest: calibrating the unrelated release: %v", err)
			}
			if err := l.Spend("unrelated", accountant.Gaussian{NoiseMultiplier: z}); err != nil {
				t.Fatalf("optimtest: spending the unrelated release: %v", err)
			}
			return l
		}},
		{"SecondRun", func(t *testing.T) *accountant.Ledger {
			l := s.ledger(t, s.eps)
			if _, err := s.solve(t, s.private(), s.data, l, dp.NewSeededSource(6)); err != nil {
				t.Fatalf("first Solve: %v", err)
			}
			return l
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := c.setup(t)
			if _, err := l.Check(ev); !errors.Is(err, accountant.ErrBudgetExceeded) {
				t.Skipf("the plan fits the ledger (Check: %v): nothing to refuse", err)
			}
			before := l.Entries()
			src := NewCountingSource(dp.NewSeededSource(8))
			res, err := s.solve(t, s.private(), s.data, l, src)
			if !errors.Is(err, accountant.ErrBudgetExceeded) {
				t.Errorf("Solve: got error %v, want one wrapping accountant.ErrBudgetExceeded", err)
			}
			if res != nil {
				t.Errorf("Solve over budget returned a result")
			}
			after := l.Entries()
			if l.Epsilon() > l.Budget().Epsilon {
				t.Errorf("ledger spent ε = %.12g over its budget %.12g", l.Epsilon(), l.Budget().Epsilon)
			}
			if len(after) < len(before) {
				t.Fatalf("ledger lost entries: %d before Solve, %d after", len(before), len(after))
			}
			for i := range before {
				if after[i].Label != before[i].Label {
					t.Errorf("entry %d changed from %q to %q", i, before[i].Label, after[i].Label)
				}
			}
			if len(after) == len(before) && src.Normals() != 0 {
				t.Errorf("Solve recorded nothing but drew %d normals; want 0 (a refused run releases nothing)", src.Normals())
			}
			if s.c.Draws != nil && src.Normals() >= s.c.Draws(s.n, s.d, s.k) {
				t.Errorf("refused Solve drew %d normals, as many as a full run (%d)", src.Normals(), s.c.Draws(s.n, s.d, s.k))
			}
		})
	}
}

// cancellation: a cancelled context stops Solve with context.Canceled, and
// what was released stays recorded within the budget.
func (s *suite) cancellation(t *testing.T) {
	t.Run("Before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		l := s.ledger(t, s.eps)
		src := NewCountingSource(dp.NewSeededSource(9))
		res, err := s.solveCtx(t, ctx, s.private(), s.data, l, src)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Solve with a cancelled context: got error %v, want one wrapping context.Canceled", err)
		}
		if res != nil {
			t.Errorf("cancelled Solve returned a result")
		}
		if l.Epsilon() > l.Budget().Epsilon {
			t.Errorf("ledger spent ε = %.12g over its budget %.12g", l.Epsilon(), l.Budget().Epsilon)
		}
		if len(l.Entries()) == 0 && src.Normals() != 0 {
			t.Errorf("cancelled Solve recorded nothing but drew %d normals; want 0", src.Normals())
		}
	})
	t.Run("BeforeNonPrivate", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := s.solveCtx(t, ctx, s.nonPrivate(), s.data, nil, dp.NewSeededSource(9))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("non-private Solve with a cancelled context: got error %v, want one wrapping context.Canceled", err)
		}
		if res != nil {
			t.Errorf("cancelled Solve returned a result")
		}
	})
	t.Run("During", func(t *testing.T) {
		// The context is cancelled when the first noise is drawn: the run
		// has started releasing.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		l := s.ledger(t, s.eps)
		src := NewCountingSource(dp.NewSeededSource(10))
		src.OnNormal = cancel
		res, err := s.solveCtx(t, ctx, s.private(), s.data, l, src)
		switch {
		case err == nil:
			t.Logf("Solve finished after its context was cancelled during the last release (allowed)")
		case !errors.Is(err, context.Canceled):
			t.Errorf("Solve cancelled during the run: got error %v, want one wrapping context.Canceled", err)
		case res != nil:
			t.Errorf("cancelled Solve returned a result")
		}
		if src.Normals() == 0 {
			t.Errorf("private Solve drew no noise")
		}
		if len(l.Entries()) == 0 {
			t.Errorf("Solve drew noise but the ledger recorded nothing")
		}
		if l.Epsilon() > l.Budget().Epsilon {
			t.Errorf("ledger spent ε = %.12g over its budget %.12g", l.Epsilon(), l.Budget().Epsilon)
		}
	})
}

// freshNoise: every release draws noise, as many draws as Config.Draws says,
// and a Source used twice gives two different runs.
func (s *suite) freshNoise(t *testing.T) {
	src := NewCountingSource(dp.NewSeededSource(11))
	res, err := s.solve(t, s.private(), s.data, nil, src)
	if err != nil {
		t.Fatalf("Solve: %v", err)
	}
	releases := 0
	for _, rel := range res.Report.Releases {
		releases += rel.Count
	}
	got := src.Normals()
	if got < releases || got == 0 {
		t.Errorf("Solve drew %d normals for %d releases; want at least one per release", got, releases)
	}
	if s.c.Draws != nil {
		if want := s.c.Draws(s.n, s.d, s.k); got != want {
			t.Errorf("Solve drew %d normals, want %d (Config.Draws)", got, want)
		}
	}
	// The stream goes on: a second run on the same source has new noise.
	again, err := s.solve(t, s.private(), s.data, nil, src)
	if err != nil {
		t.Fatalf("second Solve: %v", err)
	}
	if eq, _ := sameW(res, again); eq {
		t.Errorf("two runs drawing from one Source gave identical models; want fresh noise")
	}
}

// acceptable reports whether err is a documented input error: a
// *accountant.ParamError or one of linalg's input sentinels.
func acceptable(err error) bool {
	var pe *accountant.ParamError
	return errors.As(err, &pe) || errors.Is(err, linalg.ErrEmpty) || errors.Is(err, linalg.ErrShape) ||
		errors.Is(err, linalg.ErrNonFinite) || errors.Is(err, linalg.ErrLabel)
}

// badInput: bad data, sources and targets are errors, never panics, results
// or ledger charges.
func (s *suite) badInput(t *testing.T) {
	mutate := func(f func(d *optim.Data)) *optim.Data {
		d := clone(s.data)
		f(d)
		return d
	}
	nan32, inf32 := float32(math.NaN()), float32(math.Inf(1))
	type solveCase struct {
		name    string
		private bool
		data    *optim.Data
		src     dp.Source
	}
	var cases []solveCase
	for _, private := range []bool{true, false} {
		mode := "Private"
		if !private {
			mode = "NonPrivate"
		}
		src := dp.NewSeededSource(12)
		cases = append(cases,
			solveCase{mode + "/NilSource", private, s.data, nil},
			solveCase{mode + "/NilData", private, nil, src},
			solveCase{mode + "/NilFeatures", private, &optim.Data{Labels: s.data.Labels, Classes: s.k}, src},
			solveCase{mode + "/LabelTooLarge", private, mutate(func(d *optim.Data) { d.Labels[0] = d.Classes }), src},
			solveCase{mode + "/NegativeLabel", private, mutate(func(d *optim.Data) { d.Labels[len(d.Labels)-1] = -1 }), src},
			solveCase{mode + "/NaNFeature", private, mutate(func(d *optim.Data) { d.X.Data[1] = nan32 }), src},
			solveCase{mode + "/InfFeature", private, mutate(func(d *optim.Data) { d.X.Data[len(d.X.Data)-1] = inf32 }), src},
			solveCase{mode + "/OneClass", private, mutate(func(d *optim.Data) { d.Classes = 1; clear(d.Labels) }), src},
			solveCase{mode + "/ShortLabels", private, mutate(func(d *optim.Data) { d.Labels = d.Labels[:len(d.Labels)-1] }), src},
			solveCase{mode + "/ShortFeatures", private, mutate(func(d *optim.Data) { d.X.Data = d.X.Data[:len(d.X.Data)-1] }), src},
			solveCase{mode + "/NoRows", private, &optim.Data{X: &linalg.Matrix32{Cols: s.d}, Classes: s.k}, src},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sol, l := s.nonPrivate(), (*accountant.Ledger)(nil)
			if c.private {
				sol, l = s.private(), s.ledger(t, s.eps)
			}
			res, err := s.solve(t, sol, c.data, l, c.src)
			if err == nil || !acceptable(err) {
				t.Errorf("Solve: got error %v, want a *accountant.ParamError or a linalg input error", err)
			}
			if res != nil {
				t.Errorf("Solve on bad input returned a result")
			}
			if l != nil && len(l.Entries()) != 0 {
				t.Errorf("Solve on bad input recorded %d releases, want 0", len(l.Entries()))
			}
		})
	}

	targets := []struct {
		name       string
		eps, delta float64
	}{
		{"EpsilonZero", 0, s.delta},
		{"EpsilonNegative", -1, s.delta},
		{"EpsilonNaN", math.NaN(), s.delta},
		{"EpsilonMinusInf", math.Inf(-1), s.delta},
		{"DeltaZero", s.eps, 0},
		{"DeltaOne", s.eps, 1},
		{"DeltaNegative", s.eps, -s.delta},
		{"DeltaNaN", s.eps, math.NaN()},
	}
	for _, p := range targets {
		t.Run(p.name, func(t *testing.T) {
			sol := s.c.New(optim.Privacy{Epsilon: p.eps, Delta: p.delta, Accountant: s.c.Accountant})
			var pe *accountant.ParamError
			if _, err := plan(t, sol, s.n); !errors.As(err, &pe) {
				t.Errorf("Plan with (ε, δ) = (%g, %g): got error %v, want a *accountant.ParamError", p.eps, p.delta, err)
			}
			src := NewCountingSource(dp.NewSeededSource(13))
			res, err := s.solve(t, sol, s.data, nil, src)
			if !errors.As(err, &pe) {
				t.Errorf("Solve with (ε, δ) = (%g, %g): got error %v, want a *accountant.ParamError", p.eps, p.delta, err)
			}
			if res != nil {
				t.Errorf("Solve with a bad target returned a result")
			}
			if src.Normals() != 0 {
				t.Errorf("Solve with a bad target drew %d normals, want 0", src.Normals())
			}
		})
	}
	for _, n := range []int{0, -1} {
		t.Run(fmt.Sprintf("Plan(%d)", n), func(t *testing.T) {
			if _, err := plan(t, s.private(), n); err == nil || !acceptable(err) {
				t.Errorf("Plan(%d): got error %v, want a *accountant.ParamError or a linalg input error", n, err)
			}
		})
	}
}

// concurrent: one solver value used by two goroutines at once gives the
// runs it gives sequentially (run with -race to catch data races).
func (s *suite) concurrent(t *testing.T) {
	sol := s.private()
	seeds := []uint64{14, 15}
	want := make([]*optim.Result, len(seeds))
	for i, seed := range seeds {
		res, err := s.solve(t, sol, s.data, nil, dp.NewSeededSource(seed))
		if err != nil {
			t.Fatalf("Solve: %v", err)
		}
		want[i] = res
	}
	got := make([]*optim.Result, len(seeds))
	errs := make([]error, len(seeds))
	var wg sync.WaitGroup
	for i, seed := range seeds {
		wg.Go(func() {
			got[i], errs[i] = sol.Solve(context.Background(), s.data, nil, dp.NewSeededSource(seed))
		})
	}
	wg.Wait()
	for i := range seeds {
		if errs[i] != nil {
			t.Errorf("concurrent Solve %d: %v", i, errs[i])
			continue
		}
		if d := diff(want[i], got[i], false); d != "" {
			t.Errorf("concurrent Solve with seed %d differs from the sequential one: %s", seeds[i], d)
		}
	}
	if !sameData(s.data, s.orig) {
		t.Errorf("concurrent Solves modified the Data")
	}
}
