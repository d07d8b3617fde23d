package optim

import (
	"context"
	"fmt"
	"math"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// A Solver fits a linear classifier to private data with differential privacy.
type Solver interface {
	// Plan returns the privacy event Solve spends on n examples. It reads no data,
	// so a budget can be checked, or noise calibrated, beforehand. A non-private
	// solver (Privacy.Epsilon = +Inf) returns an error wrapping ErrNonPrivate.
	Plan(n int) (accountant.Event, error)
	// Solve fits d. Every noisy release goes through l; all randomness comes from src.
	// If l refuses a release, Solve releases nothing more and returns an error wrapping
	// accountant.ErrBudgetExceeded. On cancellation, what was released stays recorded.
	Solve(ctx context.Context, d *Data, l *accountant.Ledger, src dp.Source) (*Result, error)
}

// Data is an in-memory labelled dataset: n feature rows of dimension d and
// their class labels in [0, Classes).
type Data struct {
	X       *linalg.Matrix32 // n×d features, one example per row.
	Labels  []int            // len n, each in [0, Classes).
	Classes int              // K ≥ 2. The number of classes is public.
}

// Validate checks shapes, labels and finiteness. It returns errors wrapping
// linalg.ErrEmpty, linalg.ErrShape, linalg.ErrNonFinite or linalg.ErrLabel, or a
// *accountant.ParamError for fewer than two classes.
func (d *Data) Validate() error {
	if d == nil || d.X == nil {
		return fmt.Errorf("optim: no data: %w", linalg.ErrEmpty)
	}
	if d.Classes < 2 {
		return &accountant.ParamError{Param: "Classes", Value: float64(d.Classes), Reason: "need at least 2 classes"}
	}
	if err := d.X.Check(); err != nil {
		return fmt.Errorf("optim: features: %w", err)
	}
	if len(d.Labels) != d.X.Rows {
		return fmt.Errorf("optim: %d labels for %d rows: %w", len(d.Labels), d.X.Rows, linalg.ErrShape)
	}
	for i, y := range d.Labels {
		if y < 0 || y >= d.Classes {
			return fmt.Errorf("optim: label %d of row %d not in [0, %d): %w", y, i, d.Classes, linalg.ErrLabel)
		}
	}
	return nil
}

// Privacy is the privacy target of a solver. It has no defaults: Epsilon and
// Delta must be set.
type Privacy struct {
	// Epsilon is the target ε, positive. +Inf runs the same code without
	// noise (the non-private accuracy ceiling); such a run spends an unbounded
	// budget, so it is refused by any Ledger with a finite budget.
	Epsilon float64
	// Delta is the target δ in (0, 1); ignored when Epsilon is +Inf.
	Delta float64
	// Split sets the ratios of the noise multipliers of the solver's releases,
	// in the order the solver documents; nil means equal noise multipliers, as in
	// the paper. Only the ratios matter.
	Split []float64
	// Accountant calibrates the noise. Nil means the exact GDP accountant for
	// full-batch methods and PLD for Poisson-subsampled DP-SGD.
	Accountant accountant.Accountant
}

// NonPrivate reports whether p asks for no noise (Epsilon = +Inf).
func (p Privacy) NonPrivate() bool { return math.IsInf(p.Epsilon, 1) }

// validate checks the target; k is the number of releases Split must cover.
func (p Privacy) validate(k int) error {
	if p.NonPrivate() {
		return nil
	}
	if !(p.Epsilon > 0) || math.IsInf(p.Epsilon, 0) {
		return &accountant.ParamError{Param: "Epsilon", Value: p.Epsilon, Reason: "must be positive (or +Inf for a non-private run)"}
	}
	if !(p.Delta > 0 && p.Delta < 1) {
		return &accountant.ParamError{Param: "Delta", Value: p.Delta, Reason: "must be in (0, 1)"}
	}
	if p.Split != nil {
		if len(p.Split) != k {
			return &accountant.ParamError{Param: "Split", Value: float64(len(p.Split)),
				Reason: fmt.Sprintf("must have one ratio per release (%d)", k)}
		}
		for _, r := range p.Split {
			if !(r > 0) || math.IsInf(r, 0) {
				return &accountant.ParamError{Param: "Split", Value: r, Reason: "ratios must be positive and finite"}
			}
		}
	}
	return nil
}

// Result is what Solve returns: the fitted model and a report of the run.
type Result struct {
	Model  *Model
	Report *Report
}

// checkWorkers rejects a negative Workers field (zero means GOMAXPROCS).
func checkWorkers(w int) error {
	if w < 0 {
		return &accountant.ParamError{Param: "Workers", Value: float64(w), Reason: "must be at least 0 (0 means GOMAXPROCS)"}
	}
	return nil
}
