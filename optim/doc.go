// Package optim fits linear classifiers (the last layer of an image classifier,
// on features from a pretrained model) with differential privacy, following
// Mehta, Thakurta, Kurakin, Cutkosky, "Large-Scale Transfer Learning for
// Differentially Private Image Classification" (arXiv 2205.02973) and Mehta,
// Krichene, Thakurta, Kurakin, Cutkosky, "Differentially Private Image
// Classification from Features" (arXiv 2211.13403).
//
// Every method implements Solver: Plan tells, before any data is read, the
// privacy event a run spends; Solve fits the model, sending every noisy release
// through an accountant.Ledger.
//
//   - LS: DP least squares from noisy sufficient statistics (XᵀX, XᵀY), released once.
//   - SGD: DP-SGD with Poisson-sampled minibatches or full batch (DP-GD).
//   - FC: DP-SGD preconditioned by a once-privatized feature covariance.
//   - Newton: DP-Newton on the one-vs-all logistic loss.
//
// # Privacy
//
// Adjacency is add/remove one example; the number of examples n is treated as
// public, as Opacus, TF Privacy and dp_accounting do. Feature rows are clipped to
// L2 norm ClipNorm (x̃ = x·min(1, C/‖x‖)) and per-example gradients to Frobenius
// norm GradClipNorm. The L2 sensitivities of the releases are:
//
//	Gram Σ x̃x̃ᵀ                                  C²
//	per-class Grams {Σ_{y=l} x̃x̃ᵀ}_l, jointly       C²
//	per-class sums XᵀY, one-hot Y                  C
//	sum of clipped per-example gradients            C_g
//	one-vs-all Hessians {Σ s(1−s)x̃x̃ᵀ}_l, jointly     √K·C²/4
//	one-vs-all gradients, jointly                  √K·C·max(1, α)
//
// Full-batch methods (LS, FC, Newton, full-batch SGD) are adaptive compositions
// of Gaussian mechanisms and are accounted exactly as one Gaussian mechanism
// with μ = √Σ_j (Δ_j/σ_j)² (Gaussian differential privacy); Poisson-subsampled
// SGD is accounted with PLD. Each solver calibrates its noise multipliers to the
// target (ε, δ) in its Privacy field, split between its releases by
// Privacy.Split (default: equal noise multipliers, as in the paper). A matrix
// release is symmetric noise (diagonal σ², off-diagonal σ²/2, one draw per pair)
// followed by projection onto the PSD cone, which is post-processing.
//
// Noise is fresh for every release, every class and every step.
//
// Floating point: every clipped row and every clipped per-example gradient,
// as computed, has norm at most its clip norm (rows are shrunk by float32
// ulps where rounding would push them over, dp.ClipRows; in the default
// Float32 arithmetic gradients are clipped to C_g·(1 − 2⁻²⁰), which absorbs
// their two float32 roundings). The sums over examples are computed in
// floating point, in an order fixed by the data's shape, and their rounding
// (about 2⁻⁵³ relative per addition in Float64; in Float32, float32 sums
// within blocks of at most 256 terms) is not accounted for: as in Opacus, TF
// Privacy and dp_accounting, the sensitivities above are those of the exact
// sums.
//
// # Randomness
//
// All randomness comes from the dp.Source given to Solve; the result is a
// deterministic function of the data, the configuration and the source's seed,
// whatever the number of workers.
//
// # Concurrency
//
// Solvers are configuration values; one may be used by several goroutines at
// once as long as it is not modified. Solve itself spreads its work over
// Workers goroutines, plus helpers that do not add work: with Workers ≥ 2
// DP-SGD draws its noise and samples while gradients are computed (in
// release order, one goroutine at a time, from the same Source, so results
// do not change), and DP-LS computes its report's side-by-side ε while the
// eigendecomposition runs. Minibatch DP-SGD whose batches fit the fused
// pass of losses.EvalClipSum (losses.FusedRows: some 7 000 rows at MNIST's
// shape) runs on a linalg.Team of Workers goroutines (the caller's
// included), which draws each step's noise, in pieces, during the step
// before, and polls for up to a quarter of a millisecond between steps
// instead of sleeping: a second core that looks busy during a run is that,
// and it ends with Solve, which returns only after the last draw. Larger
// batches, and the full batch, draw each step's noise and next sample on a
// helper goroutine during the step's gradient.
package optim
