// Package accountant describes differentially private releases as events and
// turns them into (ε, δ) guarantees.
//
// An Event (Gaussian, PoissonSampled, SampledWithoutReplacement, Composed,
// Repeated) describes a mechanism before it runs, as dp_accounting's DpEvent
// does. An Accountant maps an event to ε at a given δ, or δ at a given ε:
//
//   - GDP ("exact"): any adaptive composition of full-batch Gaussian
//     releases is one Gaussian mechanism with μ = √(Σ 1/z²) (Dong, Roth, Su);
//     its ε and δ are exact, in log space where δ underflows.
//   - RDP ("rdp"): Rényi DP, a port of dp_accounting's RdpAccountant, for
//     Poisson-subsampled and without-replacement Gaussian releases and their
//     compositions; a looser bound.
//   - PLD ("pld"): privacy-loss distributions, for subsampled events; tighter
//     than RDP.
//
// Calibrate finds the smallest noise multiplier meeting a target under any
// accountant; a Ledger records releases and enforces a Budget; Compare shows
// an event's ε under every accountant side by side. Events and ledgers
// serialise to JSON (MarshalEvent, UnmarshalEvent, Ledger.WriteTo,
// ReadLedger); accountants are found by name through Register and
// AccountantByName.
//
// # Privacy
//
// Adjacency: add/remove one example (as Opacus, TF Privacy and dp_accounting).
// The dataset size N is treated as public (as those libraries do when they
// divide by the expected batch size). Replace-one adjacency is available where
// a method supports it (sensitivities double): SampledWithoutReplacement is
// stated under replace-one, and a Gaussian event carries its adjacency; an
// event's noise multiplier is σ divided by the L2 sensitivity under that
// adjacency. Events of different adjacency cannot be composed.
//
// Full-batch methods (DP-LS, DP-FC, DP-Newton, full-batch DP-GD) are adaptive
// compositions of Gaussian mechanisms, which is exactly one Gaussian mechanism
// with μ = √(Σ_j (Δ_j/σ_j)²), so their (ε, δ) is exact:
// δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2). GDP computes it; RDP reports a
// bound 3–11 % higher. Poisson-subsampled DP-SGD is accounted with PLD
// (default) or RDP; mixed runs (one full-batch release plus subsampled steps)
// compose in PLD or RDP.
//
// What each accountant guarantees: Epsilon never understates the ε of the
// event at the given δ, and Delta never understates δ — each returns an upper
// bound, exact up to rounding for GDP, and rounding is directed so that the
// returned value is on the safe side (GDP's ε is the upper end of its root
// bracket). Calibrate returns a noise multiplier whose event meets the target
// as the accountant computes it; a Ledger refuses any release that would take
// the composition of everything recorded beyond its budget, and then nothing
// is recorded and nothing may be released.
//
// # Concurrency
//
// Events are immutable values. GDP and RDP are stateless and safe for
// concurrent use (RDP keeps an internal, mutex-protected cache of per-event
// curves). A Ledger is safe for concurrent use: its methods are serialised by
// a mutex, so concurrent Spend calls cannot jointly exceed the budget. The
// registry is safe for concurrent use; Register is meant for init functions.
package accountant
