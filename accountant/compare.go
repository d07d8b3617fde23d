package accountant

import (
	"errors"
	"fmt"
	"strings"
)

// A Comparison is the ε of one event under one accountant.
type Comparison struct {
	Accountant string  // accountant name
	Epsilon    float64 // ε at the requested δ; meaningful only if Err is nil
	Err        error   // for example wrapping ErrUnsupported
}

// Compare returns, side by side, the ε of e at delta under each of accs (all
// registered accountants, tightest kinds first, if accs is empty), so that
// the looseness of each bound can be seen: every accountant's ε is an upper
// bound, the smallest is the best guarantee, and "exact" is the true value
// where it applies. Accountants that cannot handle e report their error in
// the Comparison; Compare itself fails only for an invalid e or delta.
func Compare(e Event, delta float64, accs ...Accountant) ([]Comparison, error) {
	if e == nil {
		return nil, nilParam("Event")
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if err := checkDelta(delta); err != nil {
		return nil, err
	}
	if len(accs) == 0 {
		for _, name := range Accountants() {
			acc, err := AccountantByName(name)
			if err == nil {
				accs = append(accs, acc)
			}
		}
	}
	out := make([]Comparison, 0, len(accs))
	for _, acc := range accs {
		if acc == nil {
			return nil, nilParam("Accountant")
		}
		eps, err := acc.Epsilon(e, delta)
		out = append(out, Comparison{Accountant: acc.Name(), Epsilon: eps, Err: err})
	}
	return out, nil
}

// FormatComparisons renders comparisons as an aligned text table, one
// accountant a line, with ε relative to the smallest.
func FormatComparisons(cs []Comparison) string {
	best := 0.0
	for _, c := range cs {
		if c.Err == nil && (best == 0 || c.Epsilon < best) {
			best = c.Epsilon
		}
	}
	var b strings.Builder
	for _, c := range cs {
		switch {
		case errors.Is(c.Err, ErrUnsupported):
			fmt.Fprintf(&b, "%-6s  not applicable\n", c.Accountant)
		case c.Err != nil:
			fmt.Fprintf(&b, "%-6s  error: %v\n", c.Accountant, c.Err)
		case best > 0:
			fmt.Fprintf(&b, "%-6s  ε = %-10.4f (×%.3f)\n", c.Accountant, c.Epsilon, c.Epsilon/best)
		default:
			fmt.Fprintf(&b, "%-6s  ε = %.4f\n", c.Accountant, c.Epsilon)
		}
	}
	return b.String()
}
