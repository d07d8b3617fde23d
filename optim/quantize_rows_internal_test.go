package optim

import (
	"errors"
	"strings"
	"testing"

	"github.com/dpopt/dpopt/accountant"
)

// TestCheckQuantizeRows checks the public bound on the number of rows a
// quantisation may take: with C = 1 and b bits the grid is 2⁻ᵇ and the exact
// sums hold 2⁵³·2⁻²ᵇ = 2^(53−2b) rows of norm 1.
func TestCheckQuantizeRows(t *testing.T) {
	for _, c := range []struct {
		clip       float64
		bits, n    int
		ok         bool
		suggestion string
	}{
		{1, 16, 1<<21 - 1, true, ""},
		{1, 16, 1 << 21, false, "use at most 15"},
		{1, 15, 1 << 21, true, ""},
		{1, 10, 1<<33 - 1, true, ""},
		{1, 10, 1 << 33, false, "use at most 9"},
		{4, 16, 1<<21 - 1, true, ""}, // the bound scales with C²
		{4, 16, 1 << 21, false, "use at most 15"},
		{1, 0, 1 << 62, true, ""}, // no quantisation, no bound
	} {
		err := checkQuantizeRows(c.clip, c.bits, c.n)
		if c.ok != (err == nil) {
			t.Errorf("C = %g, b = %d, n = %d: err = %v, want ok = %t", c.clip, c.bits, c.n, err, c.ok)
			continue
		}
		if err == nil {
			continue
		}
		var pe *accountant.ParamError
		if !errors.As(err, &pe) || pe.Param != "Quantize" || !strings.Contains(err.Error(), c.suggestion) {
			t.Errorf("C = %g, b = %d, n = %d: err = %v, want a Quantize ParamError saying %q", c.clip, c.bits, c.n, err, c.suggestion)
		}
	}
}
