package features

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dpopt/dpopt/accountant"
)

// Errors returned, wrapped with context, for bad feature files. Test them
// with errors.Is. Problems with the data itself wrap the linalg sentinels
// instead: linalg.ErrShape (wrong shape or dimension), linalg.ErrEmpty (no
// rows or no columns), linalg.ErrLabel (a label that is not a non-negative
// integer in range) and linalg.ErrNonFinite (NaN, ±Inf, or |x| > linalg.MaxAbs).
var (
	// ErrFormat: a file that is corrupt, malformed or in an unsupported
	// variant (an unknown dtype, a structured array, a Fortran-ordered
	// matrix, a record that is not a tf.train.Example, trailing bytes…).
	ErrFormat = errors.New("features: malformed or unsupported file")
	// ErrChecksum: a TFRecord length or data CRC, or a zip entry CRC, that
	// does not match the bytes read.
	ErrChecksum = errors.New("features: checksum mismatch")
	// ErrTruncated: a file that ends before the data its headers announce.
	ErrTruncated = errors.New("features: truncated file")
)

// MaxLabel is the largest class label accepted in a file. Labels are
// integers in [0, MaxLabel]; Options.Classes narrows the range.
const MaxLabel = 1<<31 - 1

// paramError reports an invalid argument as the library's typed ParamError.
func paramError(param string, v float64, reason string) error {
	return &accountant.ParamError{Param: param, Value: v, Reason: reason}
}

// wrapf returns an error with a "features: " prefix wrapping sentinel.
func wrapf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("features: "+format+": %w", append(args, sentinel)...)
}

// contextError prefixes an error from a helper with where it happened, as
// "features: file: what", while still wrapping it.
type contextError struct {
	msg string
	err error
}

func (e *contextError) Error() string { return e.msg }
func (e *contextError) Unwrap() error { return e.err }

// within says that err happened in where (a file name, a record).
func within(where string, err error) error {
	return &contextError{msg: "features: " + where + ": " + strings.TrimPrefix(err.Error(), "features: "), err: err}
}
