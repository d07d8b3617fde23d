// Package linalg provides the dense linear algebra of dpopt over gonum:
// float32 feature matrices (Matrix32), a blocked, parallel Gram matrix XᵀX
// accumulated in float64 (Gram, AddGram, GramPrecision), streaming and
// mergeable sufficient
// statistics for least squares (Stats: XᵀX, per-class sums XᵀY, counts),
// products of features with model weights (MulXWt, MulRtX, their Precision
// variants, RowNorms), and
// the symmetric solvers the DP methods need: eigendecomposition (EigenSym),
// projection onto {A : λ_min(A) ≥ floor} (ProjectPSD), Cholesky factor and
// solve for many right-hand sides (NewCholesky, CholeskySolve), and
// conjugate gradients for many right-hand sides (CG).
//
// linalg adds no noise and knows nothing of privacy: the dp package clips
// rows and adds noise to what linalg computes. Its contract is exactness
// where it is cheap and reproducibility always.
//
// # Numerics
//
// Features are float32 (the layout of feature files); everything computed
// from them is returned in float64. The heavy products come in two
// precisions (Precision). Float64 — Gram, AddGram, MulXWt, MulRtX and Stats
// by default — converts entries to float64 before multiplying, so every
// product x_ri·x_rj is exact and only the float64 sums round: an entry of
// XᵀX is within about (256 + n/256)·2⁻⁵³ of Σ_r|x_ri·x_rj| of the exact
// value, and entries up to MaxAbs (whose squares overflow float32) are
// handled exactly. Float32 — GramPrecision, AddGramPrecision,
// MulXWtPrecision, MulRtXPrecision, Stats.Precision; the optim solvers'
// default — multiplies and sums in float32 within blocks of at most 256
// terms and adds the blocks in float64, as numpy does from float32 rows: at
// most about 257·2⁻²⁴ ≈ 1.5·10⁻⁵ of the sum of magnitudes per entry
// (measured: at most 3·10⁻⁷, typically 10⁻⁹–10⁻⁸), at half the CPU time on
// AVX2. Blocks whose float32 products could overflow or underflow, or
// weights beyond float32's range, are computed in Float64 instead, so the
// bound holds for every accepted input. Bad input is an error, never a NaN or a
// panic: errors wrap ErrEmpty, ErrShape, ErrNonFinite, ErrLabel,
// ErrNotPositiveDefinite (also as *NotPositiveDefiniteError, with the
// smallest eigenvalue and condition number), ErrNotConverged or ErrFormat;
// test them with errors.Is.
//
// # Reproducibility
//
// Gram, AddGram and Stats.Add sum rows in blocks of a fixed number of rows
// (256) whose partition depends only on the row count; each block is summed
// from zero in row order and the block sums are added in block order. The
// results are therefore bit-identical for every workers count, and for the
// assembly kernel (amd64 with AVX2 and FMA, detected at run time) and the
// pure-Go kernel (other CPUs, or the purego build tag): in Float64 the
// products are exact, so fused and unfused multiply-adds round the same; in
// Float32 the pure-Go kernels reproduce the assembly's operations exactly
// (the Gram's fused float32 multiply-add is emulated in Go, the GEMMs use
// unfused ones). See Stats for which merges of shards are bit-identical to
// a single pass.
//
// # Backends
//
// Heavy float64 BLAS goes through gonum's blas64 (CG's Dsymm, the
// triangular solves of Cholesky.Solve, and gonum's lapack64 behind
// NewCholesky), so a faster BLAS can be installed with blas64.Use; linalg
// never calls blas64.Use itself. EigenSym and ProjectPSD are linalg's own
// code (blocked tridiagonalisation, implicit QL with batched rotations,
// AVX2 kernels with a pure-Go fallback under the purego tag). Built with
// the openblas tag (and cgo), linalg provides UseOpenBLAS, which a
// program's main calls once; see openblas.go. It installs OpenBLAS as the
// blas64 implementation and also routes the symmetric eigendecomposition of
// EigenSym and ProjectPSD to OpenBLAS's LAPACK Dsyevd and the factorisation
// of NewCholesky to its Dpotrf and Dpocon, with the same errors and
// accuracy bounds. While a float64 BLAS other than gonum's is installed,
// the Float64 products call its Dsyrk and Dgemm per block of rows instead
// of linalg's kernels, and ProjectPSD's reconstruction its Dsyrk; results
// are then reproducible only as far as that BLAS is. Installing gonum's
// again (blas64.Use(gonum.Implementation{})) switches all of this back.
// The Float32 products use a float32 BLAS only if one is installed with
// blas32.Use, which UseOpenBLAS does not do: linalg's float32 kernels are
// faster here.
//
// # Concurrency
//
// Functions of the package are safe for concurrent use on distinct
// arguments; none modifies its inputs. Gram, AddGram, Stats.Add and the
// products take a workers count (0 means GOMAXPROCS) and run on that many
// goroutines; results do not depend on it. A Stats is not safe for
// concurrent use. A Cholesky may be used by concurrent Solve calls.
//
// ScoreGradRows, meant for the minibatches of DP-SGD (a fraction of a
// millisecond each), can instead run on a Team set in its RowsWork: a fixed
// set of goroutines that poll for work for up to a quarter of a millisecond
// after each call rather than sleep, since waking a sleeping thread costs
// tens to hundreds of microseconds per call. A Team also runs functions
// handed to it with Go, one at a time and in order, in the time its workers
// would otherwise wait (a DP-SGD run's next noise, in pieces), or first
// once Hurry makes them urgent. Results do not depend on it either.
package linalg
