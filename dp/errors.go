package dp

import (
	"errors"
	"math"

	"github.com/dpopt/dpopt/accountant"
)

// ParamError is accountant.ParamError, the one typed parameter error of dpopt.
// Every invalid privacy or noise parameter passed to dp (a non-positive or
// non-finite σ, clip norm, ε or sensitivity, a δ outside (0, 1)) is reported as
// a *ParamError, so callers can use errors.As with either name.
type ParamError = accountant.ParamError

// ErrNilSource is returned, wrapped, when a nil Source is passed where
// randomness is needed. dp never falls back to a global generator.
var ErrNilSource = errors.New("dp: nil source")

// ErrSecureRange is returned, wrapped, when the hardened Gaussian sampler is
// asked for a standard deviation outside [SecureMinSigma, SecureMaxSigma],
// where its grid would leave the normal floating-point range.
var ErrSecureRange = errors.New("dp: sigma outside the range of the hardened sampler")

// paramError returns a *ParamError for parameter p.
func paramError(p string, v float64, reason string) error {
	return &ParamError{Param: p, Value: v, Reason: reason}
}

// checkPositive returns a *ParamError unless v is positive and finite.
func checkPositive(p string, v float64) error {
	if !(v > 0) || math.IsInf(v, 1) {
		return paramError(p, v, "must be positive and finite")
	}
	return nil
}
