package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/dpopt/dpopt/accountant"
)

// errHelp is returned when -h was asked for; the usage went to stdout.
var errHelp = errors.New("help requested")

// parseFlags parses args into fs, turning flag errors into usage errors and
// printing the flag defaults on -h to stdout.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return errHelp
		}
		return &usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// release is one kind of release given on the command line.
type release struct {
	Z     float64 `json:"noise_multiplier"`
	Q     float64 `json:"sampling_rate"`
	Steps int     `json:"steps"`
}

func (r release) validate() error {
	if !(r.Z > 0) || math.IsInf(r.Z, 0) {
		return usagef("noise multiplier %v: must be positive and finite", r.Z)
	}
	if !(r.Q > 0 && r.Q <= 1) {
		return usagef("sampling rate %v: must be in (0, 1]", r.Q)
	}
	if r.Steps < 1 {
		return usagef("steps %d: must be at least 1", r.Steps)
	}
	return nil
}

// event returns the accountant event of r.
func (r release) event() accountant.Event {
	var e accountant.Event = accountant.Gaussian{NoiseMultiplier: r.Z}
	if r.Q < 1 {
		e = accountant.PoissonSampled{Rate: r.Q, Event: e}
	}
	if r.Steps > 1 {
		e = accountant.Repeated{Event: e, Count: r.Steps}
	}
	return e
}

// releaseList is a repeatable --release z=Z,steps=T,q=Q flag.
type releaseList []release

func (l *releaseList) String() string { return fmt.Sprint(*l) }

func (l *releaseList) Set(s string) error {
	r := release{Q: 1, Steps: 1}
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return fmt.Errorf("want z=Z,steps=T,q=Q, got %q", kv)
		}
		if seen[k] {
			return fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		switch k {
		case "z":
			f, err := parseFloat(v)
			if err != nil {
				return err
			}
			r.Z = f
		case "q":
			f, err := parseFloat(v)
			if err != nil {
				return err
			}
			r.Q = f
		case "steps", "t", "T":
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("steps %q: not an integer", v)
			}
			r.Steps = n
		default:
			return fmt.Errorf("unknown key %q (want z, steps, q)", k)
		}
	}
	if !seen["z"] {
		return fmt.Errorf("z=Z is required in %q", s)
	}
	if err := r.validate(); err != nil {
		return err
	}
	*l = append(*l, r)
	return nil
}

func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if math.IsNaN(f) {
		return 0, fmt.Errorf("NaN is not allowed")
	}
	return f, nil
}

// pickAccountant returns the named accountant, or the default for rs: exact
// when every release is full batch, PLD otherwise.
func pickAccountant(name string, rs []release) (accountant.Accountant, error) {
	if name == "" {
		name = "exact"
		for _, r := range rs {
			if r.Q < 1 {
				name = "pld"
			}
		}
	}
	switch name {
	case "exact", "rdp", "pld":
	default:
		return nil, usagef("--accountant %q: want exact, rdp or pld", name)
	}
	if name == "exact" {
		for _, r := range rs {
			if r.Q < 1 {
				return nil, usagef("--accountant exact applies only to full-batch releases (q = 1); use pld or rdp")
			}
		}
	}
	return accountant.AccountantByName(name)
}

// jsonFloat encodes ±Inf as the strings "+Inf" and "-Inf", which JSON numbers cannot hold.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	switch v := float64(f); {
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	default:
		return []byte(strconv.FormatFloat(v, 'g', -1, 64)), nil
	}
}
