package optim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/dpopt/dpopt/internal/atomicfile"
)

// Release describes one kind of noisy release of a run: what was released,
// its L2 sensitivity, the noise multiplier and how many times it happened.
type Release struct {
	Label           string  `json:"label"`            // e.g. "gram", "class_sums", "gradient".
	NoiseMultiplier float64 `json:"noise_multiplier"` // z = Sigma/Sensitivity.
	Sensitivity     float64 `json:"sensitivity"`      // L2 sensitivity Δ under add/remove adjacency.
	Sigma           float64 `json:"sigma"`            // standard deviation of the noise, z·Δ.
	SamplingRate    float64 `json:"sampling_rate"`    // q; 1 for full-batch releases.
	Count           int     `json:"count"`            // number of releases of this kind.
}

// Step records one optimisation step.
type Step struct {
	Loss     float64 `json:"loss"`      // mean training loss at the start of the step (non-private diagnostic; not released).
	GradNorm float64 `json:"grad_norm"` // Frobenius norm of the noisy gradient used by the step.
	Batch    int     `json:"batch"`     // examples in the step's batch.
}

// Report describes a run: the privacy spent and how, and what the solver did.
//
// The Steps' losses are computed on the private data without noise; they are
// diagnostics for the data owner and must not be published as if private.
type Report struct {
	Method     string             `json:"method"`
	Epsilon    float64            `json:"epsilon"`    // target ε (+Inf: non-private).
	Delta      float64            `json:"delta"`      // target δ.
	Accountant string             `json:"accountant"` // accountant used for calibration.
	Spent      float64            `json:"epsilon_spent"`
	Epsilons   map[string]float64 `json:"epsilons"` // ε at Delta under every applicable accountant.
	Releases   []Release          `json:"releases"`
	Steps      []Step             `json:"steps,omitempty"`
	Source     string             `json:"source"`         // "seeded", "hardened" or "custom".
	Seed       *uint64            `json:"seed,omitempty"` // the seed of a seeded source.
	N          int                `json:"n"`
	Dim        int                `json:"dim"`
	Classes    int                `json:"classes"`
	Seconds    float64            `json:"seconds"`
}

// NoiseMultipliers returns the noise multiplier of each release kind, in order.
func (r *Report) NoiseMultipliers() []float64 {
	z := make([]float64, len(r.Releases))
	for i, rel := range r.Releases {
		z[i] = rel.NoiseMultiplier
	}
	return z
}

// jsonFloat encodes ±Inf and NaN as the strings "+Inf", "-Inf" and "NaN",
// which encoding/json cannot encode as numbers.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	}
	return json.Marshal(v)
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"+Inf"`, `"Inf"`:
		*f = jsonFloat(math.Inf(1))
		return nil
	case `"-Inf"`:
		*f = jsonFloat(math.Inf(-1))
		return nil
	case `"NaN"`:
		*f = jsonFloat(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jsonFloat(v)
	return nil
}

// MarshalJSON encodes the report; a non-private run's infinite ε is the string "+Inf".
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report // no methods: no recursion
	out := struct {
		*plain
		Epsilon  jsonFloat            `json:"epsilon"`
		Spent    jsonFloat            `json:"epsilon_spent"`
		Epsilons map[string]jsonFloat `json:"epsilons"`
	}{plain: (*plain)(r), Epsilon: jsonFloat(r.Epsilon), Spent: jsonFloat(r.Spent)}
	if r.Epsilons != nil {
		out.Epsilons = make(map[string]jsonFloat, len(r.Epsilons))
		for k, v := range r.Epsilons {
			out.Epsilons[k] = jsonFloat(v)
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (r *Report) UnmarshalJSON(b []byte) error {
	type plain Report
	in := struct {
		*plain
		Epsilon  jsonFloat            `json:"epsilon"`
		Spent    jsonFloat            `json:"epsilon_spent"`
		Epsilons map[string]jsonFloat `json:"epsilons"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("optim: report: %w", err)
	}
	r.Epsilon, r.Spent = float64(in.Epsilon), float64(in.Spent)
	r.Epsilons = nil
	if in.Epsilons != nil {
		r.Epsilons = make(map[string]float64, len(in.Epsilons))
		for k, v := range in.Epsilons {
			r.Epsilons[k] = float64(v)
		}
	}
	return nil
}

// Save writes the report as indented JSON to path, through a temporary file
// that is renamed, so the file is never half-written.
func (r *Report) Save(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("optim: report: %w", err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}
