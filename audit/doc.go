// Package audit estimates empirical lower bounds on the privacy of a
// mechanism, by running it many times on neighbouring datasets and measuring
// how well an adversary tells them apart (Jagielski, Ullman and Oprea,
// "Auditing Differentially Private Machine Learning: How Private is Private
// SGD?", NeurIPS 2020, arXiv 2006.07709; Nasr, Song, Thakurta, Papernot and
// Carlini, "Adversary Instantiation: Lower Bounds for Differentially Private
// Machine Learning", IEEE S&P 2021, arXiv 2101.04535).
//
// An accountant gives an upper bound: the mechanism is at most (ε, δ)-DP.
// An audit gives a lower bound: it is at least that leaky. If the lower
// bound exceeds the claimed ε, the claim is false — the noise is too small,
// clipping is missing, noise is reused, the accountant is wrong — whatever
// the bug. If the lower bound comes close to the claimed ε, the audit is
// strong enough to catch such bugs, and the accounting is nearly tight.
//
// # What is measured
//
// A Mechanism runs once on D (without the canary) or on D′ = D ∪ {canary}
// (add/remove-one adjacency) and reduces its output to a scalar test
// statistic. Run runs it Config.Trials times in each world. On the first
// half of the trials it chooses a threshold test ("the canary is in iff the
// statistic is above, or below, t"); on the second half it counts the test's
// false positives and false negatives. For an (ε, δ)-DP mechanism every test
// has α + e^ε·β ≥ 1 − δ and β + e^ε·α ≥ 1 − δ (α, β its false-positive and
// false-negative rates), so
//
//	ε ≥ max(log((1 − δ − β)/α), log((1 − δ − α)/β)).
//
// # Confidence
//
// α and β are replaced by their one-sided Clopper–Pearson upper bounds, each
// at confidence 1 − (1 − c)/2, so both hold together with probability at
// least c (Bonferroni) and the bound on ε, which decreases in both, holds
// with probability at least c = Config.Confidence (default 95%). Because the
// threshold is chosen on trials independent of those that measure it, the
// choice needs no further correction. The bound is distribution-free: it
// assumes nothing about the statistic. Read Result.EpsilonLower as: "with
// probability at least Confidence over the audit's randomness, the mechanism
// is not (ε, δ)-DP for any ε < EpsilonLower". A correct mechanism therefore
// shows EpsilonLower > ε with probability at most 1 − Confidence; a lower
// bound of 0 proves nothing either way.
//
// Result also carries a model-based estimate (GDPMu, GDPEpsilon): when the
// statistic is a linear function of a Gaussian mechanism's output it is
// normal with the same variance in both worlds, the worlds are μ-GDP apart,
// and fitting μ gives a much tighter estimate from far fewer trials. It is
// approximate (normal approximation to the standardised mean difference)
// and valid only under that model; it is never the primary bound.
//
// # Ready-made mechanisms
//
// Gaussian, Gram and Step build the releases of dpopt from the real dp,
// linalg and losses code paths — per-class sums of clipped rows, the noisy
// (per-class) Gram of DP-LS, one full-batch clipped gradient step of
// DP-SGD/DP-FC — calibrated by the accountant to a claimed (ε, δ), with a
// worst-case canary: a feature vector orthogonal to the data, of norm
// CanaryScale·C (clipped to C by a correct mechanism), in a class of its own.
// A Break plants a bug (noise halved, clipping skipped, noise reused across
// classes) that the audit should catch.
//
// # Randomness
//
// Run draws all randomness from dp.NewSeededSource streams derived from
// Config.Seed, one per block of trials: the same Seed and Trials give the
// same Result for any Workers.
//
// # Concurrency
//
// Run calls the Mechanism from Config.Workers goroutines; the ready-made
// mechanisms are safe for concurrent use.
package audit
