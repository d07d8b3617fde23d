// Package dp implements the differential-privacy primitives of dpopt: sources
// of randomness, the Gaussian mechanism on vectors, general matrices and
// symmetric matrices, L2 clipping of feature rows and per-example gradient
// clip factors, the L2 sensitivities of the statistics dpopt releases, and the
// analytic calibration of the Gaussian mechanism (Balle and Wang, "Improving
// the Gaussian mechanism for differential privacy: analytical calibration and
// optimal denoising", ICML 2018, arXiv 1805.06530).
//
// Accounting over many releases (composition, subsampling, budgets) is the
// job of package accountant; dp releases one noisy statistic at a time.
//
// # Privacy
//
// Adjacency is add/remove one example, as in Opacus, TF Privacy and
// dp_accounting; the dataset size is public. Replace-one adjacency is
// available through the Adjacency argument of the sensitivity functions, and
// doubles every sensitivity.
//
// What is released is the noisy statistic only: S(D) + E with E Gaussian of a
// stated standard deviation σ (a standard deviation, never a variance). For a
// statistic of L2 sensitivity Δ one release is μ-GDP with μ = Δ/σ, that is
// (ε, δ)-DP with δ = DeltaForGaussian(σ, ε, Δ); SigmaForGaussian gives the
// smallest σ for a target (ε, δ).
//
// Sensitivities under add/remove, for rows clipped to L2 norm C by ClipRows
// and per-example gradients clipped to C_g:
//
//	Gram Σ x̃x̃ᵀ                         C²   (‖x̃x̃ᵀ‖_F = ‖x̃‖²)  GramSensitivity
//	per-class Grams, jointly            C²   (one class each)   GramSensitivity
//	per-class sums XᵀY, one-hot Y       C                       SumSensitivity
//	sum of clipped gradients            C_g                     GradientSumSensitivity
//	one-vs-all Hessians, K jointly      √K·C²/4·max(1, α)       OneVsAllHessianSensitivity
//	one-vs-all gradients, K jointly     √K·C·max(1, α)          OneVsAllGradientSensitivity
//
// where α is the weight of the negative examples. A symmetric statistic such
// as a Gram is released with AddGaussianSym: noise σ² on the diagonal and σ²/2
// off it, one draw per pair, which is post-processing of adding iid N(0, σ²)
// to every entry and so has exactly the privacy of the Gaussian mechanism with
// standard deviation σ.
//
// # Randomness
//
// All randomness comes from a Source argument, never from a global; a nil
// Source is an error. NewSeededSource is ChaCha8 with a fast floating-point
// normal sampler: the same seed gives the same bits, for research and tests.
// NewSecureSource is ChaCha8 keyed from crypto/rand, hardened (Harden) so that
// all Gaussian noise goes through a sampler resistant to the floating-point
// attack of Mironov ("On significance of the least significant bits for
// differential privacy", CCS 2012): noise on a power-of-two grid from a
// binomial approximation of the normal, with the input snapped to the grid,
// the technique of Google's differential-privacy library (see
// AddSecureGaussian). It costs tens of times more per sample than the plain
// sampler; see BenchmarkNoise. A Source opts into handling Gaussian noise
// itself by implementing GaussianAdder. Draws are never reused: every call
// continues the Source's stream.
//
// # Concurrency
//
// Sources are not safe for concurrent use; the functions of this package are
// safe for concurrent use on distinct arguments (distinct Sources and
// destinations). Following dpopt's rule, the noise of a run is drawn from
// its Source one release at a time, in the order of the releases, so results
// do not depend on the number of workers: either after the parallel work has
// been reduced in a fixed order (AddGaussian), or, since noise does not
// depend on the data, by one goroutine while the statistic is computed
// (DrawNormals, then AddNormals once it is ready), as optim.SGD does.
package dp
