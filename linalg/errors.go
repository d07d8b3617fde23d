package linalg

import "errors"

// Errors returned, wrapped with context, by linalg and by the packages above it
// for bad data. Test them with errors.Is.
var (
	// ErrShape: dimensions do not match.
	ErrShape = errors.New("linalg: dimension mismatch")
	// ErrEmpty: a matrix or dataset with no rows or no columns.
	ErrEmpty = errors.New("linalg: empty input")
	// ErrNonFinite: a NaN, ±Inf or huge (|x| > MaxAbs) value where finite data is required.
	ErrNonFinite = errors.New("linalg: non-finite value")
	// ErrLabel: a class label outside [0, K).
	ErrLabel = errors.New("linalg: label out of range")
	// ErrParam: an invalid parameter of a linalg call (a negative workers
	// count, a CG tolerance that is not positive and finite).
	ErrParam = errors.New("linalg: invalid parameter")
	// ErrNotPositiveDefinite: a factorisation or solve met a matrix that is not
	// (numerically) positive definite.
	ErrNotPositiveDefinite = errors.New("linalg: matrix not positive definite")
)

// MaxAbs is the largest magnitude accepted in feature data: larger values are
// rejected with ErrNonFinite, since their squares overflow float32 products.
const MaxAbs = 1e30

// Errors added with the statistics and solvers of linalg.
var (
	// ErrFormat: serialised data that is malformed, of an unknown version, or
	// fails its checksum or consistency checks.
	ErrFormat = errors.New("linalg: malformed data")
	// ErrNotConverged: an iterative solver stopped at its iteration limit
	// before reaching its tolerance.
	ErrNotConverged = errors.New("linalg: iteration did not converge")
)
