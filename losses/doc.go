// Package losses implements batched losses of a linear classifier: weights W
// (K×d, one row per class, float64) and an optional bias b (length K), applied
// to a block of feature rows X (n×d, float32, linalg.Matrix32) with integer
// labels in [0, K). The scores are s_i = W·x_i + b.
//
// Three losses are provided: Softmax (cross-entropy), Sigmoid (one-vs-all
// binary logistic losses with a negative-class weight and an optional fixed
// bias, as in Mehta, Krichene, Thakurta, Kurakin, Cutkosky, "Differentially
// Private Image Classification from Features", arXiv 2211.13403) and Squared
// (½‖s_i − e_{y_i}‖² on one-hot targets).
//
// # What Eval computes
//
// For a block, Loss.Eval fills a Batch with
//
//   - Loss: Σ_i loss_i, summed over the block (not averaged);
//   - R: the n×K residuals r_il = ∂loss_i/∂s_il, so that the gradient of the
//     summed loss is ∇_W = Rᵀ·X (Batch.Grad, one GEMM) and ∇_b = Σ_i r_i;
//   - Norms: the Frobenius norm of each per-example gradient, computed without
//     materialising it. For a linear layer g_i = r_i x_iᵀ, so ‖g_i‖_F =
//     ‖r_i‖·‖x_i‖; when a bias is trained (a non-nil bias argument), the
//     per-example gradient is the K×(d+1) matrix [r_i x_iᵀ, r_i] and
//     ‖g_i‖_F = ‖r_i‖·√(‖x_i‖² + 1). These are the norms DP-SGD clips;
//   - Curvature: the n×K weights c_il = ∂²loss_i/∂s_il². For Sigmoid and
//     Squared the classes decouple and the Hessian of the summed loss with
//     respect to row l of W is exactly Σ_i c_il x_i x_iᵀ (with the bias, append
//     a 1 to x_i). For Softmax these are the diagonal blocks of the Hessian
//     only: see Softmax.
//
// Batch.ClipSum then forms the DP-SGD sum of per-example gradients clipped to
// Frobenius norm C: with c_i = min(1, C/‖g_i‖) it is (c∘R)ᵀ·X, again one GEMM,
// plus Σ_i c_i r_i for the bias.
//
// EvalClipSum does both for a minibatch given as row indices into a data set,
// as a DP-SGD step needs them: the rows are read in place, and for a
// minibatch each row's scores, norm, residuals, clip factor and contribution
// to the gradient are computed in one pass while it is in cache
// (linalg.ScoreGradRows), with the same results as Eval and ClipSum on the
// gathered rows up to the rounding of the weight gradient.
//
// # Privacy
//
// This package releases nothing and adds no noise: it computes the quantities
// a mechanism in package dp or optim privatises. Adjacency in dpopt is
// add/remove one example. The sum returned by ClipSum changes by at most C in
// Frobenius norm (bias included when trained) when one example is added or
// removed, which is its L2 sensitivity. Gradient norms are exact identities,
// so clipping by Norms is clipping of the true per-example gradient.
//
// # Numerics
//
// Scores X·Wᵀ and gradients Rᵀ·X are computed from float32 features with
// exact float64 products (linalg.Float64, the zero value of Batch.Precision)
// or in float32 blocks summed in float64 (linalg.Float32, which the optim
// solvers set by default; about 10⁻⁶ relative, half the CPU time); row
// norms, residuals, curvatures, clip factors and losses are float64 either
// way.
// Log-sum-exp and softplus are evaluated in their stable forms, so scores of
// any finite magnitude give finite losses, residuals and curvatures (no
// overflow at |s| = 800, where exp overflows). Bad input is an error wrapping
// linalg.ErrEmpty, ErrShape, ErrNonFinite or ErrLabel, or an
// *accountant.ParamError for an invalid loss parameter, never a panic or a NaN.
//
// Sigmoid's element-wise part runs four entries at a time (AVX2 assembly on
// amd64, the same operations in Go elsewhere and with the purego tag, with
// bit-identical results): its e^−|s| is within 2 ulps of math.Exp and its
// log(1+e^−|s|) within 3 ulps of math.Log1p, so residuals and curvatures are
// within 4 ulps of the scalar formulas; rows with a score beyond ±700 take
// the scalar formulas. At n·K = 5·10⁶ it costs about 0.03 CPU-seconds
// against 0.15 for the scalar loop.
//
// # Concurrency
//
// Eval, Grad and ClipSum spread their work over a workers argument
// (0 means GOMAXPROCS). Rows are split into blocks fixed independently of
// workers and reductions run in a fixed order, so every result is
// bit-identical for any workers count. The loss values (Softmax, Sigmoid,
// Squared) are immutable and safe for concurrent use. A Batch is not safe for
// concurrent use: give each goroutine its own.
package losses
