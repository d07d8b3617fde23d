package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"

	"github.com/dpopt/dpopt/accountant"
)

// accountOutput is the stable JSON of `dpopt account --json`.
type accountOutput struct {
	Epsilon    jsonFloat `json:"epsilon"`
	Delta      jsonFloat `json:"delta"`
	Accountant string    `json:"accountant"`
	Releases   []release `json:"releases"`
}

func runAccount(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("account", flag.ContinueOnError)
	z := fs.Float64("noise-multiplier", 0, "noise multiplier z = σ/Δ of each release")
	q := fs.Float64("sampling-rate", 1, "Poisson sampling rate q in (0, 1]; 1 is full batch")
	steps := fs.Int("steps", 1, "number of releases T")
	var rels releaseList
	fs.Var(&rels, "release", "a kind of release `z=Z,steps=T,q=Q` (repeatable; instead of the three flags above)")
	delta := fs.Float64("delta", 0, "report ε at this δ in (0, 1)")
	epsilon := fs.Float64("epsilon", -1, "report δ at this ε ≥ 0")
	accName := fs.String("accountant", "", "exact, rdp or pld (default: exact if every q = 1, else pld)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if len(rels) > 0 {
		if set["noise-multiplier"] || set["sampling-rate"] || set["steps"] {
			return usagef("--release cannot be combined with --noise-multiplier, --sampling-rate or --steps")
		}
	} else {
		if !set["noise-multiplier"] {
			return usagef("--noise-multiplier (or --release) is required")
		}
		r := release{Z: *z, Q: *q, Steps: *steps}
		if err := r.validate(); err != nil {
			return err
		}
		rels = releaseList{r}
	}
	if set["delta"] == set["epsilon"] {
		return usagef("give exactly one of --delta and --epsilon")
	}
	if set["delta"] && !(*delta > 0 && *delta < 1) {
		return usagef("--delta %v: must be in (0, 1)", *delta)
	}
	if set["epsilon"] && (!(*epsilon >= 0) || math.IsInf(*epsilon, 0)) {
		return usagef("--epsilon %v: must be non-negative and finite", *epsilon)
	}
	acc, err := pickAccountant(*accName, rels)
	if err != nil {
		return err
	}
	evs := make([]accountant.Event, len(rels))
	for i, r := range rels {
		evs[i] = r.event()
	}
	ev := evs[0]
	if len(evs) > 1 {
		ev = accountant.Composed{Events: evs}
	}

	out := accountOutput{Accountant: acc.Name(), Releases: rels}
	if set["delta"] {
		eps, err := acc.Epsilon(ev, *delta)
		if err != nil {
			return fmt.Errorf("account: %w", err)
		}
		out.Epsilon, out.Delta = jsonFloat(eps), jsonFloat(*delta)
	} else {
		d, err := acc.Delta(ev, *epsilon)
		if err != nil {
			return fmt.Errorf("account: %w", err)
		}
		out.Epsilon, out.Delta = jsonFloat(*epsilon), jsonFloat(d)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}

	fmt.Fprintln(stdout, "releases (adjacency: add/remove one example):")
	for _, r := range rels {
		fmt.Fprintf(stdout, "  noise multiplier %g, sampling rate %g, %d step(s)\n", r.Z, r.Q, r.Steps)
	}
	if set["delta"] {
		fmt.Fprintf(stdout, "ε = %.6g at δ = %g (accountant %s)\n\n", float64(out.Epsilon), *delta, acc.Name())
		cs, err := accountant.Compare(ev, *delta)
		if err != nil {
			return fmt.Errorf("account: %w", err)
		}
		fmt.Fprintf(stdout, "every accountant, ε at δ = %g:\n%s", *delta, accountant.FormatComparisons(cs))
		return nil
	}
	fmt.Fprintf(stdout, "δ = %.6g at ε = %g (accountant %s)\n\nevery accountant, δ at ε = %g:\n",
		float64(out.Delta), *epsilon, acc.Name(), *epsilon)
	for _, name := range accountant.Accountants() {
		a, err := accountant.AccountantByName(name)
		if err != nil {
			continue
		}
		d, err := a.Delta(ev, *epsilon)
		switch {
		case errors.Is(err, accountant.ErrUnsupported):
			fmt.Fprintf(stdout, "%-6s  not applicable\n", name)
		case err != nil:
			fmt.Fprintf(stdout, "%-6s  error: %v\n", name, oneLine(err.Error()))
		default:
			fmt.Fprintf(stdout, "%-6s  δ = %.4g\n", name, d)
		}
	}
	return nil
}
