package dpbeam

import (
	"fmt"
	"math"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// positive checks a required positive, finite parameter.
func positive(name string, v float64) error {
	if !(v > 0) || math.IsInf(v, 0) {
		return &accountant.ParamError{Param: name, Value: v, Reason: "must be positive and finite"}
	}
	return nil
}

// Rows says how every feature row is prepared before any statistic or
// gradient is computed from it, as the core solvers prepare it: clipped to L2
// norm ClipNorm (dp.ClipRows), then, if Quantize is positive, each entry
// truncated toward zero to a multiple of linalg.Quantum(ClipNorm, Quantize)
// (linalg.Quantize; see optim.LS.Quantize). With Quantize set the
// statistics are exact sums and do not depend on how the rows are sharded
// into files and blocks (see the package documentation).
type Rows struct {
	// ClipNorm is the L2 norm C rows are clipped to. Required.
	ClipNorm float64
	// Quantize is the number of bits b of the quantisation grid, in
	// [1, linalg.MaxQuantizeBits]; 0 for none.
	Quantize int
}

// quantum checks r and returns its quantisation grid (0 for none).
func (r Rows) quantum() (float64, error) {
	if err := positive("ClipNorm", r.ClipNorm); err != nil {
		return 0, err
	}
	if r.Quantize < 0 || r.Quantize > linalg.MaxQuantizeBits {
		return 0, &accountant.ParamError{Param: "Quantize", Value: float64(r.Quantize),
			Reason: fmt.Sprintf("must be in [0, %d] bits (0 = no quantisation)", linalg.MaxQuantizeBits)}
	}
	if r.Quantize == 0 {
		return 0, nil
	}
	return linalg.Quantum(r.ClipNorm, r.Quantize)
}

// prepare returns a copy of x clipped and quantised as r says.
func (r Rows) prepare(x *linalg.Matrix32) (*linalg.Matrix32, error) {
	q, err := r.quantum()
	if err != nil {
		return nil, err
	}
	c := &linalg.Matrix32{Rows: x.Rows, Cols: x.Cols, Data: append([]float32(nil), x.Data...)}
	if _, err := dp.ClipRows(c, r.ClipNorm); err != nil {
		return nil, err
	}
	if q > 0 {
		if err := linalg.Quantize(c, q); err != nil {
			return nil, err
		}
	}
	return c, nil
}
