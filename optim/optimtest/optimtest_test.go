package optimtest_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

// meanSolver is a minimal correct Solver written against the exported API
// only: it releases the per-class sums of the clipped features (sensitivity
// C, one Gaussian release) and uses them as the weights. bug, if set, breaks
// it in one of the ways the suite must catch.
type meanSolver struct {
	optim.Privacy
	Clip    float64
	Workers int
	bug     string
}

var _ optim.Solver = (*meanSolver)(nil)

func (s *meanSolver) calibrate() (float64, accountant.Accountant, error) {
	if s.NonPrivate() {
		return 0, nil, optim.ErrNonPrivate
	}
	if !(s.Epsilon > 0) || math.IsInf(s.Epsilon, 0) {
		return 0, nil, &accountant.ParamError{Param: "Epsilon", Value: s.Epsilon, Reason: "must be positive"}
	}
	if !(s.Delta > 0 && s.Delta < 1) {
		return 0, nil, &accountant.ParamError{Param: "Delta", Value: s.Delta, Reason: "must be in (0, 1)"}
	}
	acc := s.Accountant
	if acc == nil {
		acc = accountant.GDP{}
	}
	z, err := accountant.Calibrate(acc, accountant.FullBatch(1), s.Epsilon, s.Delta)
	return z, acc, err
}

func (s *meanSolver) Plan(n int) (accountant.Event, error) {
	if n < 1 {
		return nil, &accountant.ParamError{Param: "n", Value: float64(n), Reason: "must be at least 1"}
	}
	z, _, err := s.calibrate()
	if err != nil {
		return nil, err
	}
	return accountant.Gaussian{NoiseMultiplier: z}, nil
}

func (s *meanSolver) Solve(ctx context.Context, d *optim.Data, l *accountant.Ledger, src dp.Source) (*optim.Result, error) {
	if src == nil {
		return nil, &accountant.ParamError{Param: "Source", Value: math.NaN(), Reason: "required"}
	}
	if s.bug != "panic" {
		if err := d.Validate(); err != nil {
			return nil, err
		}
	}
	z, acc, err := s.calibrate()
	private := err == nil
	if err != nil && !errors.Is(err, optim.ErrNonPrivate) {
		return nil, err
	}
	if s.bug != "ignorectx" {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	n, dim, k := d.X.Rows, d.X.Cols, d.Classes
	b := mat.NewDense(k, dim, nil)
	for i := range n {
		row := d.X.Row(i)
		var norm float64
		for _, v := range row {
			norm += float64(v) * float64(v)
		}
		f := min(1, s.Clip/math.Sqrt(norm))
		for j, v := range row {
			b.Set(d.Labels[i], j, b.At(d.Labels[i], j)+f*float64(v))
		}
	}
	if s.bug == "workers" && s.Workers == 2 {
		b.Set(0, 0, b.At(0, 0)*(1+1e-15))
	}
	rep := &optim.Report{Method: "mean", Epsilon: s.Epsilon, Delta: s.Delta, N: n, Dim: dim, Classes: k, Source: "custom"}
	if !private {
		if l != nil {
			return nil, fmt.Errorf("meanSolver: finite ledger: %w", optim.ErrNonPrivate)
		}
		if s.bug == "nonprivatenoise" {
			src.Normal(make([]float64, 1))
		}
		rep.Accountant, rep.Spent = "none", math.Inf(1)
		rep.Releases = []optim.Release{{Label: "class_sums", Sensitivity: s.Clip, SamplingRate: 1, Count: 1}}
		return &optim.Result{Model: &optim.Model{W: b}, Report: rep}, nil
	}
	if l == nil {
		if l, err = accountant.NewLedger(accountant.Budget{Epsilon: s.Epsilon, Delta: s.Delta}, acc); err != nil {
			return nil, err
		}
	}
	recorded := z
	if s.bug == "underspend" {
		recorded = 1.5 * z
	}
	if err := l.Spend("class_sums", accountant.Gaussian{NoiseMultiplier: recorded}); err != nil && s.bug != "ignoreledger" {
		return nil, fmt.Errorf("meanSolver: %w", err)
	}
	noise := make([]float64, k*dim)
	switch s.bug {
	case "fixednoise":
		dp.NewSeededSource(42).Normal(noise)
	case "drawsmore":
		src.Normal(make([]float64, 1))
		fallthrough
	default:
		src.Normal(noise)
	}
	sigma := z * s.Clip
	for i := range k {
		for j := range dim {
			b.Set(i, j, b.At(i, j)+sigma*noise[i*dim+j])
		}
	}
	if s.bug != "ignorectx" {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	ev := accountant.Gaussian{NoiseMultiplier: z}
	rep.Accountant = acc.Name()
	if rep.Spent, err = acc.Epsilon(ev, s.Delta); err != nil {
		return nil, err
	}
	rep.Epsilons = map[string]float64{acc.Name(): rep.Spent}
	rep.Releases = []optim.Release{{Label: "class_sums", NoiseMultiplier: z, Sensitivity: s.Clip, Sigma: sigma, SamplingRate: 1, Count: 1}}
	if sd, ok := src.(dp.Seeded); ok {
		seed := sd.Seed()
		rep.Source, rep.Seed = "seeded", &seed
	}
	return &optim.Result{Model: &optim.Model{W: b}, Report: rep}, nil
}

// meanConfig is the suite's configuration for meanSolver with the given bug.
func meanConfig(bug string) optimtest.Config {
	return optimtest.Config{
		New:   func(p optim.Privacy) optim.Solver { return &meanSolver{Privacy: p, Clip: 1, bug: bug} },
		Draws: func(n, d, k int) int { return d * k },
	}
}

// TestRunPasses runs the suite on a correct solver.
func TestRunPasses(t *testing.T) {
	optimtest.Run(t, meanConfig(""))
}

// bugEnv selects the bug of TestBuggySolver, which TestRunCatches runs in a
// child process: a suite that fails must fail its caller's test.
const bugEnv = "OPTIMTEST_BUG"

// TestBuggySolver runs the suite on a broken solver; it is meant to fail, and
// runs only in the child processes of TestRunCatches.
func TestBuggySolver(t *testing.T) {
	bug := os.Getenv(bugEnv)
	if bug == "" {
		t.Skip("run by TestRunCatches")
	}
	optimtest.Run(t, meanConfig(bug))
}

// TestRunCatches checks that the suite fails, in the right subtest, on
// solvers broken in each way it is meant to catch.
func TestRunCatches(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a test binary per case")
	}
	cases := []struct{ bug, subtest string }{
		{"underspend", "RecordsPlan"},
		{"ignorectx", "Cancellation/Before"},
		{"nonprivatenoise", "NonPrivateDeterministic"},
		{"workers", "Reproducible"},
		{"fixednoise", "Reproducible"},
		{"fixednoise", "FreshNoise"},
		{"drawsmore", "FreshNoise"},
		{"panic", "BadInput/Private/LabelTooLarge"},
		{"ignoreledger", "RefusesOverBudget/HalfBudget"},
	}
	for _, c := range cases {
		t.Run(c.bug+"/"+c.subtest, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBuggySolver$")
			cmd.Env = append(os.Environ(), bugEnv+"="+c.bug)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite on a solver with bug %q: got error %v, want a failing exit\n%s", c.bug, err, out)
			}
			if want := "--- FAIL: TestBuggySolver/" + c.subtest + " "; !strings.Contains(string(out), want) {
				t.Errorf("suite on a solver with bug %q: output lacks %q:\n%s", c.bug, want, out)
			}
		})
	}
}

// TestCountingSource checks the counts and that draws pass through unchanged.
func TestCountingSource(t *testing.T) {
	c := optimtest.NewCountingSource(dp.NewSeededSource(3))
	ref := dp.NewSeededSource(3)
	fired := 0
	c.OnNormal = func() { fired++ }
	got, want := make([]float64, 5), make([]float64, 5)
	c.Normal(got)
	ref.Normal(want)
	c.Normal(got[:0])
	c.Normal(got[:2])
	ref.Normal(want[:2])
	u, v := c.Uint64(), ref.Uint64()
	if c.Normals() != 7 || c.Uniforms() != 1 || fired != 1 {
		t.Errorf("got %d normals, %d uniforms, OnNormal called %d times; want 7, 1, 1", c.Normals(), c.Uniforms(), fired)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("draw %d = %v, want %v", i, got[i], want[i])
		}
	}
	if u != v {
		t.Errorf("Uint64 = %d, want %d", u, v)
	}
	// The dp package's noise goes through Normal.
	if err := dp.AddGaussian(make([]float64, 10), 1, c); err != nil {
		t.Fatal(err)
	}
	if c.Normals() != 17 {
		t.Errorf("after AddGaussian of 10: got %d normals, want 17", c.Normals())
	}
}

// TestSynthetic checks that Synthetic is a deterministic, valid and
// separable problem: each row is closest to its class's axis.
func TestSynthetic(t *testing.T) {
	a, b := optimtest.Synthetic(90, 5, 3, 1), optimtest.Synthetic(90, 5, 3, 1)
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	for i, v := range a.X.Data {
		if v != b.X.Data[i] {
			t.Fatalf("two calls differ at %d: %v, %v", i, v, b.X.Data[i])
		}
	}
	if c := optimtest.Synthetic(90, 5, 3, 2); c.X.Data[0] == a.X.Data[0] {
		t.Errorf("seeds 1 and 2 give the same first entry %v", a.X.Data[0])
	}
	for i := range a.X.Rows {
		row := a.X.Row(i)
		var norm float64
		best := 0
		for j, v := range row[:a.Classes] {
			if v > row[best] {
				best = j
			}
		}
		for _, v := range row {
			norm += float64(v) * float64(v)
		}
		if math.Abs(norm-1) > 1e-6 {
			t.Errorf("row %d has norm² %g, want 1", i, norm)
		}
		if best != a.Labels[i] {
			t.Errorf("row %d of class %d is closest to axis %d", i, a.Labels[i], best)
		}
	}
}

// TestDigits checks the shapes of the digits split.
func TestDigits(t *testing.T) {
	train, test, err := optimtest.Digits()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		d    *optim.Data
		n    int
	}{{"train", train, 1200}, {"test", test, 597}} {
		if err := c.d.Validate(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if c.d.X.Rows != c.n || c.d.X.Cols != 64 || c.d.Classes != 10 {
			t.Errorf("%s: %d×%d in %d classes, want %d×64 in 10", c.name, c.d.X.Rows, c.d.X.Cols, c.d.Classes, c.n)
		}
	}
}
