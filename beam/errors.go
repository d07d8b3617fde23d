package dpbeam

import (
	"math"

	"github.com/dpopt/dpopt/accountant"
)

// positive checks a required positive, finite parameter.
func positive(name string, v float64) error {
	if !(v > 0) || math.IsInf(v, 0) {
		return &accountant.ParamError{Param: name, Value: v, Reason: "must be positive and finite"}
	}
	return nil
}
