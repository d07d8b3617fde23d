package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pngSignature is the first eight bytes of every PNG file (RFC 2083, 3.1).
const pngSignature = "\x89PNG\r\n\x1a\n"

// The table has a header, one row per method with a mean accuracy per ε and
// the non-private ceiling; --plot writes a PNG.
func TestSweepTableAndPlot(t *testing.T) {
	dir := t.TempDir()
	plot := filepath.Join(dir, "acc.png")
	code, out, errs := runCLI(t, "sweep", "--methods", "ls,fc,newton", "--epsilons", "8,0.5,2", "--seed", "1", "--plot", plot)
	require.Equal(t, 0, code, errs)
	require.Empty(t, errs)

	b, err := os.ReadFile(plot)
	require.NoError(t, err)
	if !bytes.HasPrefix(b, []byte(pngSignature)) || len(b) < 1000 {
		t.Errorf("plot: %d bytes starting %q, want a PNG", len(b), b[:min(8, len(b))])
	}

	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var header []string
	rows := map[string][]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "method":
			header = f
		case len(f) > 0 && (f[0] == "ls" || f[0] == "fc" || f[0] == "newton" || f[0] == "sgd"):
			if _, dup := rows[f[0]]; dup {
				t.Errorf("two rows for %s", f[0])
			}
			rows[f[0]] = f[1:]
		}
	}
	if want := []string{"method", "ε=0.5", "ε=2", "ε=8", "non-private"}; strings.Join(header, " ") != strings.Join(want, " ") {
		t.Errorf("header %q, want %q (ε ascending)", header, want)
	}
	if len(rows) != 3 || rows["sgd"] != nil {
		t.Errorf("rows for %d methods, want ls, fc and newton only:\n%s", len(rows), out)
	}
	for m, cells := range rows {
		if len(cells) != 4 {
			t.Errorf("%s: %d cells, want 4", m, len(cells))
		}
	}
	if !strings.Contains(out, "plot written to "+plot) {
		t.Errorf("output does not name the plot:\n%s", out)
	}
}

// --json gives one object: a cell per method and ε, a ceiling per method,
// the seeds' accuracies; the same seed gives the same numbers as train.
func TestSweepJSON(t *testing.T) {
	code, out, errs := runCLI(t, "sweep", "--methods", "fc,ls", "--epsilons", "1,8", "--seeds", "2", "--seed", "5", "--json")
	require.Equal(t, 0, code, errs)
	require.Equal(t, 0, strings.Count(strings.TrimSpace(out), "\n"), "--json printed more than one line")
	var got struct {
		Epsilons []float64 `json:"epsilons"`
		Methods  []string  `json:"methods"`
		Seed     *uint64   `json:"seed"`
		Results  []struct {
			Method           string    `json:"method"`
			Epsilon          float64   `json:"epsilon"`
			Accuracies       []float64 `json:"accuracies"`
			MeanAccuracy     float64   `json:"mean_accuracy"`
			NoiseMultipliers []float64 `json:"noise_multipliers"`
		} `json:"results"`
		NonPrivate []struct {
			Method   string  `json:"method"`
			Accuracy float64 `json:"accuracy"`
		} `json:"non_private"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	if len(got.Results) != 4 || len(got.NonPrivate) != 2 || got.Seed == nil || *got.Seed != 5 {
		t.Fatalf("%d cells, %d ceilings, seed %v; want 4, 2, 5", len(got.Results), len(got.NonPrivate), got.Seed)
	}
	if got.Results[0].Method != "fc" || got.Results[0].Epsilon != 1 || got.Results[3].Method != "ls" || got.Results[3].Epsilon != 8 {
		t.Errorf("cells out of order: %+v", got.Results)
	}
	for _, c := range got.Results {
		if len(c.Accuracies) != 2 || c.MeanAccuracy != (c.Accuracies[0]+c.Accuracies[1])/2 || len(c.NoiseMultipliers) != 2 {
			t.Errorf("cell %+v: want 2 accuracies, their mean, 2 noise multipliers", c)
		}
	}
	// The first seed's FC run at ε = 8 is `dpopt train --seed 5 --epsilon 8`.
	tr := trainOK(t, "--seed", "5", "--epsilon", "8")
	if got.Results[1].Accuracies[0] != tr.TestAccuracy {
		t.Errorf("sweep fc ε = 8 seed 5: %v; train: %v", got.Results[1].Accuracies[0], tr.TestAccuracy)
	}
	if got.Results[1].MeanAccuracy < 0.91 || got.NonPrivate[0].Accuracy < 0.91 {
		t.Errorf("fc at ε = 8 %.3f, non-private %.3f; want ≥ 0.91", got.Results[1].MeanAccuracy, got.NonPrivate[0].Accuracy)
	}
}

func TestSweepBadFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"--bogus"}},
		{"unknown method", []string{"--methods", "ls,adam"}},
		{"repeated method", []string{"--methods", "ls,ls"}},
		{"empty methods", []string{"--methods", ""}},
		{"bad epsilon", []string{"--epsilons", "1,x"}},
		{"zero epsilon", []string{"--epsilons", "0,1"}},
		{"infinite epsilon", []string{"--epsilons", "1,+Inf"}},
		{"repeated epsilon", []string{"--epsilons", "1,1"}},
		{"zero seeds", []string{"--seeds", "0"}},
		{"delta one", []string{"--delta", "1"}},
		{"zero clip", []string{"--clip", "0"}},
		{"unknown features", []string{"--features", "rf1"}},
		{"train without test", []string{"--train", "x.npz"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			plot := filepath.Join(dir, "p.png")
			code, out, errs := runCLI(t, append([]string{"sweep", "--plot", plot}, c.args...)...)
			if code != 2 || out != "" || strings.Count(strings.TrimRight(errs, "\n"), "\n") != 0 || errs == "" {
				t.Errorf("status %d, stdout %q, stderr %q; want 2, nothing, one line", code, out, errs)
			}
			if _, err := os.Stat(plot); err == nil {
				t.Errorf("plot written")
			}
		})
	}
}

// Bad data, or a plot that cannot be written, is status 1 with nothing written.
func TestSweepBadData(t *testing.T) {
	dir := t.TempDir()
	plot := filepath.Join(dir, "p.png")
	code, out, errs := runCLI(t, "sweep", "--train", filepath.Join(dir, "no.npz"), "--test", filepath.Join(dir, "no.npz"), "--plot", plot)
	if code != 1 || out != "" || errs == "" {
		t.Errorf("missing file: status %d, stdout %q, stderr %q; want 1, nothing, one line", code, out, errs)
	}
	if _, err := os.Stat(plot); err == nil {
		t.Errorf("plot written")
	}
	code, out, errs = runCLI(t, "sweep", "--methods", "ls", "--plot", filepath.Join(dir, "no", "p.png"))
	if code != 1 || out != "" || errs == "" {
		t.Errorf("plot in a missing directory: status %d, stdout %q, stderr %q; want 1, nothing, one line", code, out, errs)
	}
}
