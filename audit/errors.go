package audit

import (
	"errors"

	"github.com/dpopt/dpopt/accountant"
)

// ParamError is accountant.ParamError, the one typed parameter error of
// dpopt. Every invalid parameter passed to audit (a trial count too small, a
// δ outside (0, 1), a confidence outside (0, 1), a non-positive ε or clip
// norm, an unknown Break or Statistic) is reported, wrapped, as a
// *ParamError, so callers can use errors.As with either name.
type ParamError = accountant.ParamError

// ErrNilMechanism is returned, wrapped, when Run is given a nil Mechanism.
var ErrNilMechanism = errors.New("audit: nil mechanism")

// ErrStatistic is returned, wrapped, when a Mechanism returns a NaN or ±Inf
// test statistic: no threshold can be placed on it.
var ErrStatistic = errors.New("audit: non-finite test statistic")

// paramError returns a *ParamError for parameter p.
func paramError(p string, v float64, reason string) error {
	return &ParamError{Param: p, Value: v, Reason: reason}
}
