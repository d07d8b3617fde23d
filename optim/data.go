package optim

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// clipped returns a copy of d's features with every row clipped to L2 norm c
// (x̃ = x·min(1, c/‖x‖)), leaving d unchanged, on workers goroutines (0:
// GOMAXPROCS).
func clipped(d *Data, c float64, workers int) (*linalg.Matrix32, error) {
	x := linalg.NewMatrix32(d.X.Rows, d.X.Cols)
	if err := copyClip(x, d.X, c, workers); err != nil {
		return nil, err
	}
	return x, nil
}

// clipChunkRows is the number of rows copied and clipped per task by
// copyClip.
const clipChunkRows = 512

// copyClip copies src into dst (of the same shape) and clips every row to L2
// norm c with dp.ClipRows, in chunks of clipChunkRows rows handed out to
// workers goroutines (0: GOMAXPROCS). Each row is clipped on its own, so the
// result does not depend on workers. On bad data the error names src's first
// bad entry.
func copyClip(dst, src *linalg.Matrix32, c float64, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	tasks := (src.Rows + clipChunkRows - 1) / clipChunkRows
	errs := make([]error, tasks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(workers, tasks)) {
		wg.Go(func() {
			for {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				r0, r1 := t*clipChunkRows, min(src.Rows, (t+1)*clipChunkRows)
				blk := dst.Slice(r0, r1)
				copy(blk.Data, src.Slice(r0, r1).Data)
				_, errs[t] = dp.ClipRows(blk, c)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			if cerr := src.Check(); cerr != nil { // the entry's place in src, not in its chunk
				err = cerr
			}
			return fmt.Errorf("optim: clipping features: %w", err)
		}
	}
	return nil
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
		if err := copyClip(blk, d.X.Slice(i0, i1), c, workers); err != nil {
			return nil, err
		}
		if err := s.Add(blk, d.Labels[i0:i1]); err != nil {
			return nil, fmt.Errorf("optim: statistics: %w", err)
		}
	}
	return s, nil
}
