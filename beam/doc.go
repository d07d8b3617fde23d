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
// Each Block's statistics (or clipped-gradient sum) are computed by the core
// library (linalg.Stats.Add, losses.Batch.ClipSum), which is deterministic
// for a given block. The blocks' values are then added in wide fixed-point
// integers, exactly, and each entry is rounded to float64 once at the end.
// Integer addition is associative, so the result does not depend on the
// runner, the number of workers, the bundling, the order of AddInput calls or
// the merge tree — it is bit-identical to StatsOf over the same blocks.
//
//   - Gram and class sums are exact: every product of two float32 values is a
//     multiple of 2⁻²⁹⁸ and exact in float64, float64 sums of such multiples
//     stay multiples of 2⁻²⁹⁸ (class sums: of 2⁻¹⁴⁹), so the fixed point
//     loses nothing. Each entry is the correctly rounded sum over blocks of the
//     core's per-block values.
//   - Gradient sums are first rounded, block by block, to multiples of about
//     C_g·2⁻²⁰⁰ (a function of each block's value alone, so still
//     order-free), then added exactly.
//
// What the result does depend on: the blocks, i.e. which rows form a block.
// The sources cut each file into blocks of BlockRows consecutive rows, as
// features.Open + Stream.Next(BlockRows) does on one machine, so re-sharding
// the same rows into different files can change the last bits. Against the
// core solvers, which fold blocks with rounded float64 additions (linalg.Stats
// Reproducibility), the statistics agree to the bit when the data is one
// block (n ≤ BlockRows, e.g. datasets/digits) and to within the core's
// rounding otherwise; the models agree to within 1e-9 (the bound the tests
// check) with the same seed.
//
// # Cost
//
// One pass over the data per statistic: one for DP-LS, 1 + Steps for DP-FC.
// A StatsFn accumulator holds about 6·d(d+1)/2 + 4·K·d words (clip norm ≈ 1),
// and each AddInput a d×d scratch Gram and a block: d = 1664 needs about
// 70 MB per accumulator. A gradient accumulator holds about 5·K·d words.
//
// # Concurrency
//
// The CombineFns and DoFns hold no state between calls; Beam runs them on as
// many workers as it likes. The drivers (SolveLS, SolveFC, Pipeline.Stats,
// Pipeline.Gradient) are not safe for concurrent use with the same Source or
// Ledger.
package dpbeam
