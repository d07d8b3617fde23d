// Package optimtest is the conformance suite every optim.Solver passes, as
// gonum's blas/testblas is for BLAS implementations.
//
// A solver's tests call Run with a Config whose New builds the solver for a
// given privacy target:
//
//	func TestLSConformance(t *testing.T) {
//		optimtest.Run(t, optimtest.Config{
//			New: func(p optim.Privacy) optim.Solver { return &optim.LS{Privacy: p, ClipNorm: 1} },
//			Draws: func(n, d, k int) int { return d*(d+1)/2 + d*k },
//		})
//	}
//
// Run checks, each in its own subtest, that the solver
//
//   - NonPrivateDeterministic: at ε = +Inf runs without noise (no N(0, 1)
//     draws, and no uniform draws unless Config.Sampled), gives the same model
//     twice, refuses a Ledger with a finite budget, has no Plan (ErrNonPrivate),
//     and reaches Config.MinAccuracy on its training data;
//   - Reproducible: gives bit-identical models and reports for the same seed,
//     whatever its Workers, and different models for different seeds;
//   - RecordsPlan: records in a fresh Ledger exactly the privacy Plan promised,
//     reports it, and never spends more than the target;
//   - RefusesOverBudget: fails with accountant.ErrBudgetExceeded, and returns
//     no model, against a Ledger too small for its plan or already partly spent;
//   - Cancellation: honours a cancelled context, before or during the run;
//   - FreshNoise: draws fresh noise for every release, as many draws as
//     Config.Draws says when given;
//   - BadInput: rejects bad data, sources and privacy targets with errors
//     (a *accountant.ParamError or a linalg sentinel), never a panic, a result,
//     or a charge to the Ledger;
//   - Concurrent: may be used by two goroutines at once.
//
// # Randomness
//
// Every run of the suite uses fixed seeds, so it is deterministic; it makes no
// statistical check and so has no false-positive probability. Data made by
// Synthetic is a fixed function of its seed.
//
// # Cost
//
// Run calls Solve about 30 times. Keep the solver small (the default data has
// DefaultN rows of dimension DefaultDim in DefaultClasses classes) and its step
// count low.
package optimtest
