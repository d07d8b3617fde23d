package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/dpopt/dpopt/audit"
)

// auditOutput is the stable JSON of `dpopt audit --json`.
type auditOutput struct {
	Mechanism    string    `json:"mechanism"`
	Break        string    `json:"break"`
	Statistic    string    `json:"statistic"`
	Epsilon      float64   `json:"epsilon"` // claimed
	Delta        float64   `json:"delta"`
	Trials       int       `json:"trials"` // per world; half choose the threshold
	Seed         uint64    `json:"seed"`
	Confidence   float64   `json:"confidence"`
	EpsilonLower float64   `json:"epsilon_lower"` // Clopper–Pearson, distribution-free
	Exceeds      bool      `json:"exceeds_claim"` // epsilon_lower > epsilon: the claim is refuted
	Threshold    float64   `json:"threshold"`
	Above        bool      `json:"above"` // "canary in" iff statistic > threshold (else <)
	FPR          float64   `json:"fpr"`
	FNR          float64   `json:"fnr"`
	FPRUpper     float64   `json:"fpr_upper"`
	FNRUpper     float64   `json:"fnr_upper"`
	GDPMu        jsonFloat `json:"gdp_mu"`      // model-based: assumes a Gaussian statistic
	GDPEpsilon   jsonFloat `json:"gdp_epsilon"` // ε at δ of the lower confidence bound on μ
}

// maxAuditTrials bounds --trials: 2·10⁸ runs of a mechanism is hours.
const maxAuditTrials = 100_000_000

func runAudit(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	mech := fs.String("mechanism", "", "mechanism to audit: gaussian (per-class sums), gram (DP-LS Gram) or step (one DP-SGD/DP-FC gradient step)")
	epsilon := fs.Float64("epsilon", 2, "claimed ε > 0 the noise is calibrated to")
	delta := fs.Float64("delta", 1e-5, "δ in (0, 1): claimed, and where ε is bounded")
	trials := fs.Int("trials", 100_000, fmt.Sprintf("runs per world (with and without the canary), at least %d", audit.MinTrials))
	seed := fs.Uint64("seed", 1, "seed of the audit's noise")
	confidence := fs.Float64("confidence", audit.DefaultConfidence, "confidence of the lower bound, in (0, 1)")
	brk := fs.String("break", "none", "planted bug: none, half-noise, no-clip or reuse-noise")
	stat := fs.String("statistic", "auto", "test statistic: projection, difference, or auto (difference for reuse-noise, else projection)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	var mk func(audit.Setup) (audit.Mechanism, error)
	switch *mech {
	case "gaussian":
		mk = audit.Gaussian
	case "gram":
		mk = audit.Gram
	case "step":
		mk = audit.Step
	case "":
		return usagef("--mechanism is required (gaussian, gram or step)")
	default:
		return usagef("--mechanism %q: want gaussian, gram or step", *mech)
	}
	if !(*epsilon > 0) || math.IsInf(*epsilon, 0) {
		return usagef("--epsilon %v: must be positive and finite", *epsilon)
	}
	if !(*delta > 0 && *delta < 1) {
		return usagef("--delta %v: must be in (0, 1)", *delta)
	}
	if !(*confidence > 0 && *confidence < 1) {
		return usagef("--confidence %v: must be in (0, 1)", *confidence)
	}
	if *trials < audit.MinTrials || *trials > maxAuditTrials {
		return usagef("--trials %d: must be in [%d, %d]", *trials, audit.MinTrials, maxAuditTrials)
	}
	b, err := audit.ParseBreak(*brk)
	if err != nil {
		return usagef("--break %q: want none, half-noise, no-clip or reuse-noise", *brk)
	}
	var st audit.Statistic
	switch *stat {
	case "auto":
		if b == audit.ReuseNoise {
			st = audit.Difference
		}
	default:
		if st, err = audit.ParseStatistic(*stat); err != nil {
			return usagef("--statistic %q: want projection, difference or auto", *stat)
		}
	}
	m, err := mk(audit.Setup{Epsilon: *epsilon, Delta: *delta, Break: b, Statistic: st})
	if err != nil {
		var pe *audit.ParamError
		if errors.As(err, &pe) {
			return &usageError{err}
		}
		return fmt.Errorf("audit: %w", err)
	}
	start := time.Now()
	r, err := audit.Run(m, audit.Config{Trials: *trials, Delta: *delta, Confidence: *confidence, Seed: *seed})
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	out := auditOutput{
		Mechanism: *mech, Break: b.String(), Statistic: st.String(),
		Epsilon: *epsilon, Delta: *delta, Trials: *trials, Seed: *seed, Confidence: r.Confidence,
		EpsilonLower: r.EpsilonLower, Exceeds: r.EpsilonLower > *epsilon,
		Threshold: r.Threshold, Above: r.Above,
		FPR: r.FPR, FNR: r.FNR, FPRUpper: r.FPRUpper, FNRUpper: r.FNRUpper,
		GDPMu: jsonFloat(r.GDPMu), GDPEpsilon: jsonFloat(r.GDPEpsilon),
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	verdict := "consistent with the claim"
	if out.Exceeds {
		verdict = "CLAIM REFUTED: the mechanism is less private than claimed"
	}
	dir := ">"
	if !r.Above {
		dir = "<"
	}
	fmt.Fprintf(stdout, "mechanism %s (break %s, statistic %s): claimed ε = %g at δ = %g\n", out.Mechanism, out.Break, out.Statistic, *epsilon, *delta)
	fmt.Fprintf(stdout, "lower bound ε ≥ %.4g at %g%% confidence (Clopper–Pearson; %d trials per world, half to choose the threshold; %.1fs): %s\n",
		r.EpsilonLower, 100*r.Confidence, *trials, time.Since(start).Seconds(), verdict)
	fmt.Fprintf(stdout, "test: canary in iff statistic %s %.6g; FPR = %.4g (≤ %.4g), FNR = %.4g (≤ %.4g)\n",
		dir, r.Threshold, r.FPR, r.FPRUpper, r.FNR, r.FNRUpper)
	fmt.Fprintf(stdout, "GDP estimate (assumes a Gaussian statistic): μ = %.4g, ε ≈ %.4g\n", r.GDPMu, r.GDPEpsilon)
	return nil
}
