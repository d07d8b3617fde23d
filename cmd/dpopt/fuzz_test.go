package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// fuzzArgs splits a fuzzed command line into arguments at '|' and prefixes
// the command. It reports false for command lines too slow for a fuzz
// execution: any integer above 10 000 (steps, counts) in an argument, or a
// sampling rate strictly between 0 and 1.
func fuzzArgs(calibrate bool, line string) ([]string, bool) {
	cmd := "account"
	if calibrate {
		cmd = "calibrate"
	}
	args := append([]string{cmd}, strings.Split(line, "|")...)
	if len(line) > 512 {
		return nil, false
	}
	for _, a := range args {
		for _, tok := range strings.FieldsFunc(a, func(r rune) bool { return r == '=' || r == ',' }) {
			if n, err := strconv.ParseFloat(strings.TrimSpace(tok), 64); err == nil && strings.IndexFunc(tok, func(r rune) bool { return r == '.' || r == 'e' || r == 'E' }) < 0 && (n > 10_000 || n < -10_000) {
				return nil, false
			}
		}
	}
	// Subsampled accounting (q in (0, 1)) takes seconds and hundreds of MB
	// per call under PLD: too slow for fuzzing, and not about flag parsing.
	for i, a := range args {
		var v string
		switch {
		case strings.Contains(a, "sampling-rate="):
			_, v, _ = strings.Cut(a, "=")
		case strings.Contains(a, "sampling-rate") && i+1 < len(args):
			v = args[i+1]
		case strings.Contains(a, "q="):
			for _, kv := range strings.Split(a, ",") {
				if k, val, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == "q" {
					if q, err := strconv.ParseFloat(val, 64); err == nil && q > 0 && q < 1 {
						return nil, false
					}
				}
			}
		}
		if q, err := strconv.ParseFloat(v, 64); err == nil && q > 0 && q < 1 {
			return nil, false
		}
	}
	return args, true
}

// FuzzAccountCalibrateFlags runs `dpopt account` and `dpopt calibrate` on
// fuzzed flags: the exit status is 0, 1 or 2, never a panic; a failure prints
// nothing on stdout and exactly one line on stderr; a success prints nothing
// on stderr.
func FuzzAccountCalibrateFlags(f *testing.F) {
	for _, s := range []struct {
		calibrate bool
		line      string
	}{
		{false, "--noise-multiplier|1.1|--sampling-rate|0.01|--steps|100|--delta|1e-5"},
		{false, "--noise-multiplier=2|--epsilon=1|--json"},
		{false, "--release|z=1,steps=10,q=0.1|--release|z=3|--delta|1e-6|--accountant|rdp"},
		{false, "--noise-multiplier|0|--delta|1e-5"},
		{false, "--noise-multiplier|1|--delta|NaN"},
		{false, "--release|z=1,q=2|--delta|1e-5"},
		{false, "-h"},
		{true, "--epsilon|1|--delta|1e-5|--steps|10"},
		{true, "--epsilon|8|--delta|1e-5|--sampling-rate|0.01|--steps|100|--accountant|pld|--json"},
		{true, "--epsilon|1e-12|--delta|1e-15|--accountant|exact"},
		{true, "--epsilon|-1|--delta|1e-5"},
		{true, "--epsilon|1|--delta|1e-5|--sampling-rate|1.5"},
		{true, "--epsilon|1|--delta|1e-5|extra"},
	} {
		f.Add(s.calibrate, s.line)
	}
	f.Fuzz(func(t *testing.T, calibrate bool, line string) {
		args, ok := fuzzArgs(calibrate, line)
		if !ok {
			t.Skip("too slow for fuzzing")
		}
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		switch {
		case code < 0 || code > 2:
			t.Fatalf("%q: exit status %d, want 0, 1 or 2", args, code)
		case code != 0 && stdout.Len() != 0:
			t.Fatalf("%q: status %d with stdout %q", args, code, stdout.String())
		case code != 0 && (strings.Count(stderr.String(), "\n") != 1 || !strings.HasSuffix(stderr.String(), "\n")):
			t.Fatalf("%q: status %d with stderr %q, want one line", args, code, stderr.String())
		case code == 0 && stderr.Len() != 0:
			t.Fatalf("%q: status 0 with stderr %q", args, stderr.String())
		}
	})
}
