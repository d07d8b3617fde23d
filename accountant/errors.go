package accountant

import (
	"errors"
	"fmt"
	"math"
)

// ErrBudgetExceeded is returned, wrapped, when a release would make the privacy
// spent exceed a Ledger's budget. The release is refused and nothing is recorded.
var ErrBudgetExceeded = errors.New("accountant: privacy budget exceeded")

// ErrUnsupported is returned, wrapped, when an accountant cannot account for an
// event (for example a Poisson-subsampled release given to the exact GDP accountant).
var ErrUnsupported = errors.New("accountant: event not supported by this accountant")

// ErrUnreachable is returned, wrapped, when a calibration target cannot be met
// anywhere in the search range (for example an ε too small for any noise level
// under the chosen accountant).
var ErrUnreachable = errors.New("accountant: privacy target unreachable")

// ErrFormat is matched (errors.Is) by every error that reports a malformed
// ledger or event encoding: bad JSON, unknown or missing fields, an unknown
// event type or accountant, trailing data, an unsupported version. Invalid
// values inside a well-formed encoding are *ParamError instead.
var ErrFormat = errors.New("accountant: malformed ledger or event")

// ErrUnknownAccountant is returned, wrapped, by AccountantByName for a name
// no accountant is registered under.
var ErrUnknownAccountant = errors.New("accountant: unknown accountant")

// formatError marks err as a malformed encoding (ErrFormat) without
// changing its message.
type formatError struct{ err error }

func (e *formatError) Error() string        { return e.err.Error() }
func (e *formatError) Unwrap() error        { return e.err }
func (e *formatError) Is(target error) bool { return target == ErrFormat }

// asFormat returns err marked as ErrFormat, unless it is nil or reports an
// invalid value (*ParamError), which keeps its own type.
func asFormat(err error) error {
	var pe *ParamError
	if err == nil || errors.As(err, &pe) || errors.Is(err, ErrFormat) {
		return err
	}
	return &formatError{err}
}

// A ParamError reports an invalid parameter, as fs.PathError reports a bad path.
// It is the one typed parameter error of dpopt: the dp and optim packages return
// it too, so callers can use errors.As with *accountant.ParamError everywhere.
type ParamError struct {
	Param  string  // name of the parameter, e.g. "NoiseMultiplier"
	Value  float64 // the offending value
	Reason string  // what was wanted, e.g. "must be positive and finite"
}

// Error implements error.
func (e *ParamError) Error() string {
	return fmt.Sprintf("dpopt: invalid %s = %v: %s", e.Param, e.Value, e.Reason)
}

// nilParam reports a nil argument (an event, an accountant, a builder) as a
// *ParamError, as optim reports a nil dp.Source; its Value is NaN.
func nilParam(param string) error {
	return &ParamError{Param: param, Value: math.NaN(), Reason: "must not be nil"}
}
