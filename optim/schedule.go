package optim

import (
	"fmt"
	"math"

	"github.com/dpopt/dpopt/accountant"
)

// Schedule is a learning-rate schedule: step t (0-based) of T steps uses the
// learning rate η·Factor(t, T). Schedules are post-processing: they depend
// only on t and T, never on the data. The zero value is Constant.
type Schedule int

const (
	// Constant keeps the learning rate fixed: Factor = 1.
	Constant Schedule = iota
	// Cosine decays it along half a cosine: Factor = ½(1 + cos(π·t/T)),
	// from 1 at the first step to just above 0 at the last.
	Cosine
	// Linear decays it linearly: Factor = 1 − t/T, from 1 to 1/T at the last step.
	Linear
)

// String returns "constant", "cosine" or "linear".
func (s Schedule) String() string {
	switch s {
	case Constant:
		return "constant"
	case Cosine:
		return "cosine"
	case Linear:
		return "linear"
	}
	return fmt.Sprintf("Schedule(%d)", int(s))
}

func (s Schedule) validate() error {
	if s < Constant || s > Linear {
		return &accountant.ParamError{Param: "Schedule", Value: float64(s), Reason: "unknown schedule"}
	}
	return nil
}

// Factor returns the multiplier of the learning rate at step t of steps
// (0 ≤ t < steps). It is positive for every such t, so no released gradient
// is wasted, and 1 at t = 0. It returns 1 for an unknown schedule or t out of range.
func (s Schedule) Factor(t, steps int) float64 {
	if t < 0 || t >= steps {
		return 1
	}
	f := float64(t) / float64(steps)
	switch s {
	case Cosine:
		return 0.5 * (1 + math.Cos(math.Pi*f))
	case Linear:
		return 1 - f
	}
	return 1
}
