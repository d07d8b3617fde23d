// Command dpopt trains differentially private linear classifiers and answers
// privacy-accounting questions.
//
// Usage:
//
//	dpopt train     [--train PATH --test PATH | --dataset digits|mnist] [--features pixels|rf2048]
//	                [--method ls|sgd|fc|newton] [--epsilon E] [--delta D] [--clip C] [--reg L] [--lr LR]
//	                [--steps T] [--batch-size B] [--seed S] [--non-private] [--out model.npz] [--report report.json] [--json]
//	dpopt sweep     [--epsilons 0.1,1,8] [--methods ls,sgd,fc,newton] [data flags] [--delta D] [--clip C]
//	                [--seeds N] [--seed S] [--plot out.png] [--json]
//	dpopt account   --noise-multiplier Z [--sampling-rate Q] [--steps T] (--delta D | --epsilon E) [--accountant exact|rdp|pld] [--json]
//	dpopt account   --release z=Z,steps=T,q=Q [--release …] (--delta D | --epsilon E) [--accountant …] [--json]
//	dpopt calibrate --epsilon E --delta D [--sampling-rate Q] [--steps T] [--accountant exact|rdp|pld] [--json]
//
// train fits a linear classifier with differential privacy and reports its
// test accuracy. Without data flags it trains on the built-in digits data set;
// --dataset mnist reads MNIST (50 000 training images, 10 000 test images);
// --train and --test read feature files (.npz, .npy, TFRecord, CSV), the test
// file being used only for evaluation. Every feature row is L2-normalised
// (after the fixed random ReLU map of --features rf2048, if chosen) and then
// clipped to --clip (default 1), so that the sensitivities of the releases are
// known. The defaults are --method fc --epsilon 1 --delta 1e-5 and each solver's
// own hyper-parameter defaults, which work across ε without tuning; DP-SGD,
// whose optim.SGD has no default length or batch, takes 300 steps of
// Poisson-sampled batches of expected size n/10 (accounted with PLD). The noise
// comes from the hardened, unseeded source unless --seed asks for a seeded,
// replayable one (for research); the report records which, and the seed.
// --out writes the model as .npz (arrays W and bias), --report the privacy
// report as JSON, each through a temporary file renamed into place.
//
// sweep trains every method at every ε (and without noise, for the accuracy
// ceiling) and prints a privacy–utility table of mean test accuracy; --plot
// writes a PNG of accuracy against ε.
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
  train      train a differentially private linear classifier (default: DP-FC on digits)
  sweep      privacy–utility table (and plot) of several methods across ε
  account    privacy (ε at δ, or δ at ε) of a composition of Gaussian releases
  calibrate  smallest noise multiplier that meets a target (ε, δ)

Run 'dpopt <command> -h' for the flags of a command.
`

// run executes the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return exitStatus(usagef("no command given (run 'dpopt help' for the list)"), stderr)
	}
	var err error
	switch args[0] {
	case "train":
		err = runTrain(args[1:], stdout, stderr)
	case "sweep":
		err = runSweep(args[1:], stdout, stderr)
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
		err = usagef("unknown command %q (want train, sweep, account or calibrate)", args[0])
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
