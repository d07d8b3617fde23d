// Command dpopt trains differentially private linear classifiers and answers
// privacy-accounting questions.
//
// Usage:
//
//	dpopt account   --noise-multiplier Z [--sampling-rate Q] [--steps T] (--delta D | --epsilon E) [--accountant exact|rdp|pld] [--json]
//	dpopt account   --release z=Z,steps=T,q=Q [--release …] (--delta D | --epsilon E) [--accountant …] [--json]
//	dpopt calibrate --epsilon E --delta D [--sampling-rate Q] [--steps T] [--accountant exact|rdp|pld] [--json]
//
// account reports the privacy of a composition of Gaussian releases (each
// possibly Poisson-subsampled and repeated): ε at a given δ, or δ at a given ε,
// under the chosen accountant, and without --json a side-by-side table of every
// applicable accountant. Without --accountant it uses the exact (GDP)
// accountant when every release is full batch (q = 1), PLD otherwise.
//
// calibrate finds the smallest noise multiplier z such that T releases,
// Poisson-subsampled at rate Q, meet (ε, δ).
//
// With --json each command prints exactly one JSON object on stdout. Bad flags
// or values print one line on stderr and exit with status 2, with nothing on
// stdout; other failures exit with status 1.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError marks bad flags or values: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

const usage = `usage: dpopt <command> [flags]

commands:
  account    privacy (ε at δ, or δ at ε) of a composition of Gaussian releases
  calibrate  smallest noise multiplier that meets a target (ε, δ)

Run 'dpopt <command> -h' for the flags of a command.
`

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "account":
		err = runAccount(args[1:], stdout)
	case "calibrate":
		err = runCalibrate(args[1:], stdout)
	case "audit":
		err = runAudit(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usagef("unknown command %q (want account or calibrate)", args[0])
	}
	return exitStatus(err, stderr)
}

// exitStatus prints err as one line on stderr and maps it to a status.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "dpopt: %v\n", oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func oneLine(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
	}
	return string(out)
}
