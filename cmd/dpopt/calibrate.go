package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"

	"github.com/dpopt/dpopt/accountant"
)

// calibrateOutput is the stable JSON of `dpopt calibrate --json`.
type calibrateOutput struct {
	NoiseMultiplier float64   `json:"noise_multiplier"`
	Epsilon         jsonFloat `json:"epsilon"` // achieved ε ≤ target
	Delta           float64   `json:"delta"`
	Accountant      string    `json:"accountant"`
}

func runCalibrate(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	epsilon := fs.Float64("epsilon", 0, "target ε > 0")
	delta := fs.Float64("delta", 0, "target δ in (0, 1)")
	q := fs.Float64("sampling-rate", 1, "Poisson sampling rate q in (0, 1]; 1 is full batch")
	steps := fs.Int("steps", 1, "number of releases T")
	accName := fs.String("accountant", "", "exact, rdp or pld (default: exact if q = 1, else pld)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["epsilon"] || !set["delta"] {
		return usagef("--epsilon and --delta are required")
	}
	if !(*epsilon > 0) || math.IsInf(*epsilon, 0) {
		return usagef("--epsilon %v: must be positive and finite", *epsilon)
	}
	if !(*delta > 0 && *delta < 1) {
		return usagef("--delta %v: must be in (0, 1)", *delta)
	}
	// The noise multiplier is what is being sought: validate the rest with a placeholder.
	if err := (release{Z: 1, Q: *q, Steps: *steps}).validate(); err != nil {
		return err
	}
	acc, err := pickAccountant(*accName, []release{{Q: *q}})
	if err != nil {
		return err
	}
	build := func(z float64) (accountant.Event, error) {
		e := release{Z: z, Q: *q, Steps: *steps}.event()
		return e, e.Validate()
	}
	z, err := accountant.Calibrate(acc, build, *epsilon, *delta)
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	ev, _ := build(z)
	achieved, err := acc.Epsilon(ev, *delta)
	if err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	out := calibrateOutput{NoiseMultiplier: z, Epsilon: jsonFloat(achieved), Delta: *delta, Accountant: acc.Name()}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "noise multiplier z = %.6g (σ = z·Δ for a release of L2 sensitivity Δ)\n", z)
	fmt.Fprintf(stdout, "%d step(s) at sampling rate %g: ε = %.6g at δ = %g (accountant %s; target ε = %g)\n",
		*steps, *q, achieved, *delta, acc.Name(), *epsilon)
	return nil
}
