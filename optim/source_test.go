package optim_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

// TestReportSaysSource checks that every solver's report says which kind of
// Source made its noise: a secure source is "hardened" with no seed (none is
// recorded in the JSON either), a seeded source is "seeded" with its seed,
// and anything else is "custom" — so a seeded run can never pass for a
// secure one.
func TestReportSaysSource(t *testing.T) {
	data := optimtest.Synthetic(90, 5, 3, 2)
	p := optim.Privacy{Epsilon: 2, Delta: 1e-5}
	solvers := map[string]optim.Solver{
		"LS":     &optim.LS{Privacy: p, ClipNorm: 1},
		"FC":     &optim.FC{Privacy: p, ClipNorm: 1, GradClipNorm: 1, Steps: 2},
		"Newton": &optim.Newton{Privacy: p, ClipNorm: 1},
		"SGD":    &optim.SGD{Privacy: p, Steps: 2, BatchSize: 90, GradClipNorm: 1}, // full batch: exact accounting, fast
	}
	const seed = 0xdeadbeef
	sources := []struct {
		name string
		src  func() dp.Source
		kind string
		seed bool
	}{
		{"secure", dp.NewSecureSource, "hardened", false},
		{"seeded", func() dp.Source { return dp.NewSeededSource(seed) }, "seeded", true},
		{"counting", func() dp.Source { return optimtest.NewCountingSource(dp.NewSeededSource(seed)) }, "custom", false},
	}
	for name, s := range solvers {
		for _, sc := range sources {
			t.Run(name+"/"+sc.name, func(t *testing.T) {
				res, err := s.Solve(context.Background(), data, nil, sc.src())
				if err != nil {
					t.Fatal(err)
				}
				rep := res.Report
				if rep.Source != sc.kind {
					t.Errorf("Source = %q, want %q", rep.Source, sc.kind)
				}
				switch {
				case sc.seed && rep.Seed == nil:
					t.Errorf("Seed = nil, want %#x", seed)
				case sc.seed && *rep.Seed != seed:
					t.Errorf("Seed = %#x, want %#x", *rep.Seed, seed)
				case !sc.seed && rep.Seed != nil:
					t.Errorf("Seed = %#x, want none", *rep.Seed)
				}
				b, err := json.Marshal(rep)
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatal(err)
				}
				if m["source"] != sc.kind {
					t.Errorf("JSON source = %v, want %q", m["source"], sc.kind)
				}
				if _, ok := m["seed"]; ok != sc.seed {
					t.Errorf("JSON has seed: %v, want %v (%s)", ok, sc.seed, b)
				}
			})
		}
	}
}
