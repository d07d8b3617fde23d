// Package dpbeam runs the data-parallel part of dpopt's full-batch solvers on
// Apache Beam (Go SDK), for feature sets that outgrow one machine: the
// clipped sufficient statistics of DP-LS and DP-FC (StatsFn) and the
// full-batch clipped-gradient sums of DP-FC's steps (GradientTransform,
// GradSumFn), over Blocks read from sharded .npz or TFRecord files
// (ReadFiles). SolveLS and SolveFC drive optim.LS and optim.FC on a Pipeline:
// one pipeline run per statistic, the result read back on the driver.
//
// # Privacy
//
// Adjacency is add/remove one example; n is public; the number of classes is
// public (an argument, not read from the data). The workers compute only
// exact, non-private sums; nothing they output is released. Noise is added
// once per release, on the driver, by the core dp functions
// (dp.AddGaussianSym for the Gram, sensitivity C²; dp.AddGaussianDense for
// the class sums, sensitivity C, and for each gradient sum, sensitivity C_g),
// at the noise multipliers of the core solver's own calibration
// (optim.LS.Plan, optim.FC.Plan), after the release is spent in the
// accountant.Ledger under the core solver's labels ("gram", "class_sums",
// "gradient"). The whole plan is checked against the ledger before the first
// pipeline runs. The released values, and hence the guarantee, are those of
// the core solvers.
//
// # Reproducibility
//
// Every statistic is an exact sum over Blocks of values the core library
// computes for each block (linalg.Stats.Add, losses.Batch.ClipSum), so it
// does not depend on the runner, the number of workers, the bundling, the
// order of AddInput calls or the merge tree. What it can depend on is which
// rows form a block, and that is what quantisation removes.
//
//   - Quantised rows (Rows.Quantize = b > 0, as optim.LS.Quantize and
//     optim.FC.Quantize; 16 is a good default): every clipped entry is
//     truncated toward zero to a multiple of q = linalg.Quantum(C, b) ≤
//     C·2⁻ᵇ, which grows no norm and so changes no sensitivity. Products are
//     then exact multiples of q², and every partial sum of the Gram — in the
//     Gram kernel, across blocks, in merges — is bounded by a diagonal entry
//     (Cauchy–Schwarz), so while the diagonal stays below 2⁵³·q² (at b = 16,
//     at least 2¹⁹·C²: hundreds of millions of rows when the rows spread
//     their norm over d ≈ 1000 features) no float64 addition rounds. The
//     accumulator is a quantised linalg.Stats (linalg.NewQuantizedStats),
//     which checks that bound on every Add and Merge (a pipeline past it
//     fails with linalg.ErrInexact; use fewer bits). That failure depends on
//     the data (it says a diagonal entry is large), so it can only be ruled
//     out for sure by choosing b with n·C² < 2⁵³·q², as the core solvers
//     require when n is known (optim: Quantize); the driver learns n only
//     from the pipeline. The Gram, class sums and
//     counts are then the exact statistics of the quantised rows: the same to
//     the bit however the rows are split into files and blocks and in
//     whatever order, and equal to the core's (optim.LS and optim.FC with the
//     same Quantize, in memory or streamed with any BlockRows). The DP-LS
//     model for a noise seed is the core's (optim.LS with Global set, the
//     form SolveLS runs), bit for bit.
//   - Unquantised rows (Quantize = 0): each block's float64 statistics are
//     added in wide fixed-point integers, exactly (products of float32 values
//     are multiples of 2⁻²⁹⁸, float64 sums of them too; class sums of
//     2⁻¹⁴⁹), and each entry rounded once at the end. The result is each
//     block's core value summed exactly — but a block's own Gram is rounded,
//     so re-sharding the same rows into other files or block sizes can change
//     the last bits. A block's Gram is computed from exact products
//     (linalg.Float64), as the core computes it with Float64 set; the core's
//     default, float32 blocks (linalg.Float32), differs by about 10⁻⁷
//     relative. Against the core with Float64 set, which folds blocks with
//     rounded additions, the statistics agree to the bit when the data is one
//     block and to the core's rounding otherwise; the models to within 1e-9.
//   - Gradient sums (DP-FC's steps) are first rounded, block by block, to
//     multiples of about C_g·2⁻²⁰⁰ (a function of each block's value alone,
//     so still order-free), then added exactly. A block's own clipped sum is
//     a float64 GEMM (exact products, linalg.Float64), so the sums depend on
//     the blocks in the last bits, quantised or not; the DP-FC model agrees
//     with the core's, run with Float64 set, to within 1e-9 (the bound the
//     tests check) with the same seed. (The core's default computes its
//     GEMMs in float32 blocks, about 10⁻⁷ relative away.)
//
// # Cost
//
// One pass over the data per statistic: one for DP-LS, 1 + Steps for DP-FC.
// A StatsFn accumulator holds d² + K·d float64s with quantised rows, about
// 6·d(d+1)/2 + 4·K·d words without (clip norm ≈ 1), and each AddInput a d×d
// scratch Gram and a block: d = 1664, K = 1000 needs about 35 MB (quantised) or 70 MB
// per accumulator. A gradient accumulator holds about 5·K·d words.
//
// # Concurrency
//
// The CombineFns and DoFns hold no state between calls; Beam runs them on as
// many workers as it likes. The drivers (SolveLS, SolveFC, Pipeline.Stats,
// Pipeline.Gradient) are not safe for concurrent use with the same Source or
// Ledger.
package dpbeam
