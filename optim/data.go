package optim

import (
	"fmt"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// clipped returns a copy of d's features with every row clipped to L2 norm c
// (x̃ = x·min(1, c/‖x‖)), leaving d unchanged.
func clipped(d *Data, c float64) (*linalg.Matrix32, error) {
	x := &linalg.Matrix32{Rows: d.X.Rows, Cols: d.X.Cols, Data: append([]float32(nil), d.X.Data...)}
	if _, err := dp.ClipRows(x, c); err != nil {
		return nil, fmt.Errorf("optim: clipping features: %w", err)
	}
	return x, nil
}

// statsBlock is the number of rows clipped at a time when statistics are
// accumulated, bounding the extra memory to statsBlock·d float32s.
const statsBlock = 8192

// clippedStats accumulates the sufficient statistics (XᵀX, per-class sums,
// counts) of d's rows clipped to norm c — and quantised to the grid q if
// q > 0 (Stats.Add quantises) — one block of rows at a time, in precision
// prec (ignored for quantised rows, which are summed exactly), on workers
// goroutines (0: GOMAXPROCS).
func clippedStats(d *Data, c, q float64, prec linalg.Precision, workers int) (*linalg.Stats, error) {
	s, err := newStats(d.X.Cols, d.Classes, q, prec)
	if err != nil {
		return nil, err
	}
	s.Workers = workers
	buf := linalg.NewMatrix32(min(statsBlock, d.X.Rows), d.X.Cols)
	for i0 := 0; i0 < d.X.Rows; i0 += statsBlock {
		i1 := min(i0+statsBlock, d.X.Rows)
		blk := buf.Slice(0, i1-i0)
		copy(blk.Data, d.X.Slice(i0, i1).Data)
		if _, err := dp.ClipRows(blk, c); err != nil {
			return nil, fmt.Errorf("optim: clipping features: %w", err)
		}
		if err := s.Add(blk, d.Labels[i0:i1]); err != nil {
			return nil, fmt.Errorf("optim: statistics: %w", err)
		}
	}
	return s, nil
}
