package optim_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

func lsFactory(p optim.Privacy) optim.Solver { return &optim.LS{Privacy: p, ClipNorm: 1} }

// The split SplitSearch picks for DP-LS must be about as good as the equal
// split on the real digits data, and better where the proxy sees a clear gain.
// Measured (mean of seeds 1–3): equal split 20.9 / 52.9 / 81.7 / 88.2 / 91.2 %
// at ε = 0.1 / 0.3 / 1 / 3 / 8; picked split ([4 1], [4 1], [2 1], [1 1],
// [1 1]) 26.2 / 60.6 / 82.5 / 88.2 / 91.2 %. The floors leave room for
// different seeds (about ±1.5 points).
func TestSplitSearchDigits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 5 candidates × 3 trials per ε")
	}
	train, test, err := optimtest.Digits()
	require.NoError(t, err)
	mean := func(p optim.Privacy) float64 {
		acc := 0.0
		for seed := uint64(1); seed <= 3; seed++ {
			res, err := lsFactory(p).Solve(context.Background(), train, nil, dp.NewSeededSource(seed))
			require.NoError(t, err)
			a, err := res.Model.Accuracy(test, 0)
			require.NoError(t, err)
			acc += a / 3
		}
		return acc
	}
	for _, c := range []struct {
		eps     float64
		minGain float64 // picked − equal, in accuracy
	}{{0.1, 0.01}, {0.3, 0.03}, {1, -0.015}, {3, -0.015}, {8, -0.015}} {
		p := optim.Privacy{Epsilon: c.eps, Delta: 1e-5}
		ss := optim.SplitSearch{New: lsFactory, N: train.X.Rows, Dim: train.X.Cols, Classes: train.Classes, Seed: 1}
		best, errs, err := ss.Best(context.Background(), p)
		require.NoError(t, err)
		require.Len(t, errs, 5)
		equal := mean(p)
		p.Split = best
		picked := mean(p)
		t.Logf("ε = %g: picked %v (proxy errors %.3f): %.3f vs equal %.3f", c.eps, best, errs, picked, equal)
		if picked-equal < c.minGain {
			t.Errorf("ε = %g: picked split %v reaches %.3f, equal split %.3f: gain below %.3f", c.eps, best, picked, equal, c.minGain)
		}
	}
}

func TestSplitSearchTiesGoToEvenSplit(t *testing.T) {
	// At a huge ε every candidate classifies the easy proxy perfectly.
	ss := optim.SplitSearch{New: lsFactory, N: 600, Dim: 8, Classes: 3, Spread: 0.2, Seed: 1}
	best, errs, err := ss.Best(context.Background(), optim.Privacy{Epsilon: 50, Delta: 1e-5})
	require.NoError(t, err)
	for _, e := range errs {
		if e > 0.002 {
			t.Fatalf("proxy errors %v: the test needs all candidates tied", errs)
		}
	}
	if best[0] != 1 || best[1] != 1 {
		t.Errorf("tied candidates: picked %v, want the equal split [1 1]", best)
	}
}

// With more rows than MaxRows the proxy runs on MaxRows rows at a larger ε.
func TestSplitSearchCapsRows(t *testing.T) {
	calls := 0
	ss := optim.SplitSearch{
		New: func(p optim.Privacy) optim.Solver {
			calls++
			if p.Epsilon <= 1 && p.Split != nil {
				t.Errorf("proxy ran at ε = %g, want it scaled above the target 1", p.Epsilon)
			}
			return lsFactory(p)
		},
		N: 1_000_000, Dim: 8, Classes: 3, MaxRows: 300, Trials: 1, Candidates: [][]float64{{1, 1}, {2, 1}}, Seed: 2,
	}
	_, errs, err := ss.Best(context.Background(), optim.Privacy{Epsilon: 1, Delta: 1e-5})
	require.NoError(t, err)
	if len(errs) != 2 || calls != 2 {
		t.Errorf("got %d errors from %d solver builds, want 2 and 2", len(errs), calls)
	}
}

func TestSplitSearchBadInput(t *testing.T) {
	ok := optim.SplitSearch{New: lsFactory, N: 100, Dim: 4, Classes: 2}
	p := optim.Privacy{Epsilon: 1, Delta: 1e-5}
	cases := []struct {
		name string
		ss   optim.SplitSearch
		p    optim.Privacy
	}{
		{"nil constructor", optim.SplitSearch{N: 100, Dim: 4, Classes: 2}, p},
		{"one class", optim.SplitSearch{New: lsFactory, N: 100, Dim: 4, Classes: 1}, p},
		{"no rows", optim.SplitSearch{New: lsFactory, Dim: 4, Classes: 2}, p},
		{"non-private", ok, optim.Privacy{Epsilon: math.Inf(1)}},
		{"zero epsilon", ok, optim.Privacy{Delta: 1e-5}},
		{"bad delta", ok, optim.Privacy{Epsilon: 1, Delta: 2}},
		{"negative spread", optim.SplitSearch{New: lsFactory, N: 100, Dim: 4, Classes: 2, Spread: -1}, p},
		{"bad candidate", optim.SplitSearch{New: lsFactory, N: 100, Dim: 4, Classes: 2, Candidates: [][]float64{{1}}}, p},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			best, errs, err := c.ss.Best(context.Background(), c.p)
			var pe *accountant.ParamError
			if err == nil || best != nil || errs != nil {
				t.Fatalf("got (%v, %v, %v), want an error and nothing else", best, errs, err)
			}
			if c.name != "nil constructor" && !errors.As(err, &pe) && !errors.Is(err, optim.ErrNonPrivate) {
				t.Errorf("error %v is neither a *ParamError nor ErrNonPrivate", err)
			}
		})
	}
}
