package optim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
)

// DefaultBlockRows is the number of rows a streaming solver reads at a time
// when StreamData.BlockRows is zero. It equals the block of the in-memory
// DP-LS statistics, so that LS.SolveStream with the default reproduces
// LS.Solve bit for bit.
const DefaultBlockRows = statsBlock

// StreamData is a labelled dataset read from disk (or any features.Stream)
// in blocks of rows, for data sets larger than memory. A streaming solver
// calls Open once per pass over the data: DP-LS makes one pass, DP-FC one for
// the Gram and one per step. Every pass must deliver the same rows in the
// same order; a pass that delivers a different number of rows is an error.
//
// # Memory
//
// A streaming solver holds one block of BlockRows = B rows at a time, never
// the data set. With d features and K classes its live memory is about
//
//	reading: 12·B·d bytes (the reader's byte buffer, the block, the next block)
//	DP-LS:   + 8·(4·d² + 3·K·d) (statistics, released Gram, PSD projection);
//	         the per-class form adds 8·K·d² for the K per-class Grams
//	DP-FC:   + 8·4·d² + 24·B·K (residuals, curvatures and clipped residuals of
//	         the block) + 8·5·K·d (weights, gradients, directions)
//
// independent of the number of rows n, and the Go garbage collector lets the
// heap grow to about twice the live memory (GOGC = 100). At the ImageNet
// shape (d = 1280, K = 1000, B = 8192) the measured peak resident memory is
// about 0.3 GB for DP-LS and 1.0 GB for DP-FC (0.8 GB with Float64: the
// float32 products keep float32 copies and pooled scratch per worker),
// against 6.6 GB of float32 features (benchmarks/cmd/streamfit). Lower BlockRows to lower it; the GEMMs
// of the Gram and of the gradients stay efficient from about a thousand rows.
//
// # Privacy
//
// The releases, their sensitivities and their order are those of the
// in-memory Solve, and each is spent in the ledger before it is made. The
// number of rows n is public (see the package documentation); N declares it,
// or it is taken from the stream's header (features.Lener) or counted by the
// first pass — in every case before any release.
type StreamData struct {
	// Open returns a new stream positioned at the first row. Required. The
	// solver closes every stream it opens.
	Open func() (features.Stream, error)
	// N is the number of rows. Zero means: from the stream's header if it
	// implements features.Lener, else counted by the first pass. A stream
	// whose rows do not number N is an error wrapping linalg.ErrShape.
	N int
	// Classes is the number of classes K ≥ 2. Required; a label outside
	// [0, K) is an error wrapping linalg.ErrLabel.
	Classes int
	// BlockRows is the number of rows read, clipped and processed at a time;
	// zero means DefaultBlockRows. It bounds the memory (see above).
	BlockRows int
}

// FileData returns StreamData that reads the feature file path (or the
// files a glob pattern matches, see features.Open) with options o on every
// pass, with K = o.Classes classes.
func FileData(path string, o features.Options) *StreamData {
	return &StreamData{
		Open:    func() (features.Stream, error) { return features.Open(path, o) },
		Classes: o.Classes,
	}
}

// A StreamSolver is a Solver that can also fit data streamed in blocks of
// rows, holding one block in memory at a time. LS and FC implement it.
type StreamSolver interface {
	Solver
	// SolveStream fits sd as Solve fits in-memory data, with the same
	// releases, the same ledger entries and the same noise draws: for the
	// same rows in the same order and the same source, the model equals
	// Solve's up to float64 summation order (see each solver's method). If a
	// pass fails (a read error, a bad row or label, a row count other than
	// sd.N, cancellation), SolveStream releases nothing more and returns an
	// error and no model.
	SolveStream(ctx context.Context, sd *StreamData, l *accountant.Ledger, src dp.Source) (*Result, error)
}

var (
	_ StreamSolver = (*LS)(nil)
	_ StreamSolver = (*FC)(nil)
)

// validate checks sd's fields.
func (sd *StreamData) validate() error {
	if sd == nil || sd.Open == nil {
		return fmt.Errorf("optim: no stream: %w", linalg.ErrEmpty)
	}
	if sd.Classes < 2 {
		return &accountant.ParamError{Param: "Classes", Value: float64(sd.Classes), Reason: "need at least 2 classes"}
	}
	if sd.N < 0 {
		return &accountant.ParamError{Param: "N", Value: float64(sd.N), Reason: "must be non-negative (0 = from the stream)"}
	}
	if sd.BlockRows < 0 {
		return &accountant.ParamError{Param: "BlockRows", Value: float64(sd.BlockRows), Reason: "must be non-negative (0 = default)"}
	}
	return nil
}

// streamPass reads a StreamData pass after pass, checking that every pass
// has the same dimension and number of rows.
type streamPass struct {
	sd    *StreamData
	clip  float64
	block int
	n     int     // rows per pass; 0 until known
	dim   int     // 0 until the first Open
	q     float64 // grid the rows are quantised to after clipping; 0 for none
	bits  int     // the Quantize bits behind q
}

func newStreamPass(sd *StreamData, clip float64, bits int) (*streamPass, error) {
	if err := sd.validate(); err != nil {
		return nil, err
	}
	q, err := quantum(clip, bits)
	if err != nil {
		return nil, err
	}
	if sd.N > 0 {
		if err := checkQuantizeRows(clip, bits, sd.N); err != nil {
			return nil, err
		}
	}
	block := sd.BlockRows
	if block == 0 {
		block = DefaultBlockRows
	}
	return &streamPass{sd: sd, clip: clip, block: block, n: sd.N, q: q, bits: bits}, nil
}

// open opens a stream and learns or checks its dimension and length.
func (p *streamPass) open() (features.Stream, error) {
	st, err := p.sd.Open()
	if err != nil {
		return nil, fmt.Errorf("optim: opening stream: %w", err)
	}
	if st == nil {
		return nil, fmt.Errorf("optim: Open returned no stream: %w", linalg.ErrEmpty)
	}
	fail := func(err error) (features.Stream, error) {
		st.Close()
		return nil, err
	}
	d := st.Dim()
	switch {
	case d < 1:
		return fail(fmt.Errorf("optim: stream of %d features: %w", d, linalg.ErrEmpty))
	case p.dim == 0:
		p.dim = d
	case d != p.dim:
		return fail(fmt.Errorf("optim: stream has %d features, an earlier pass had %d: %w", d, p.dim, linalg.ErrShape))
	}
	if ln, ok := st.(features.Lener); ok {
		switch m := ln.Len(); {
		case p.n == 0:
			p.n = m
		case m != p.n:
			return fail(fmt.Errorf("optim: stream header says %d rows, want N = %d: %w", m, p.n, linalg.ErrShape))
		}
	}
	if p.bits > 0 {
		// Quantised sums stay exact only below a number of rows; refusing
		// from n alone keeps a failure from depending on the data.
		if p.n == 0 {
			return fail(&accountant.ParamError{Param: "Quantize", Value: float64(p.bits),
				Reason: "a quantised pass needs the number of rows: set StreamData.N"})
		}
		if err := checkQuantizeRows(p.clip, p.bits, p.n); err != nil {
			return fail(err)
		}
	}
	return st, nil
}

// run makes one pass: it reads the rows in blocks, checks them and their
// labels, clips them in place to norm p.clip and hands each block to f, in
// order. It checks ctx between blocks, and that the pass has p.n rows (and
// sets p.n if unknown). It returns the first error of the stream, of a block
// or of f.
func (p *streamPass) run(ctx context.Context, f func(x *linalg.Matrix32, y []int) error) (err error) {
	st, err := p.open()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("optim: closing stream: %w", cerr)
		}
	}()
	rows := 0
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("optim: after %d rows: %w", rows, err)
		}
		want := p.block
		if p.n > 0 {
			// Ask for one row past N at the end, to detect extra rows
			// without reading a whole block of them.
			want = max(1, min(p.block, p.n-rows))
		}
		x, y, err := st.Next(want)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("optim: reading row %d: %w", rows, err)
		}
		if x == nil || x.Rows < 1 || x.Rows > want || x.Cols != p.dim {
			return fmt.Errorf("optim: stream returned a bad block after row %d: %w", rows, linalg.ErrShape)
		}
		if p.n > 0 && rows+x.Rows > p.n {
			return fmt.Errorf("optim: stream has more than N = %d rows: %w", p.n, linalg.ErrShape)
		}
		if y == nil {
			return fmt.Errorf("optim: stream has no labels: %w", linalg.ErrLabel)
		}
		if len(y) != x.Rows {
			return fmt.Errorf("optim: %d labels for %d rows after row %d: %w", len(y), x.Rows, rows, linalg.ErrShape)
		}
		for i, l := range y {
			if l < 0 || l >= p.sd.Classes {
				return fmt.Errorf("optim: label %d of row %d not in [0, %d): %w", l, rows+i, p.sd.Classes, linalg.ErrLabel)
			}
		}
		// The block belongs to us (features.Stream.Next): clip it in place.
		if _, err := dp.ClipRows(x, p.clip); err != nil {
			return fmt.Errorf("optim: clipping features at row %d: %w", rows, err)
		}
		if p.q > 0 {
			if err := linalg.Quantize(x, p.q); err != nil {
				return fmt.Errorf("optim: %w", err)
			}
		}
		if err := f(x, y); err != nil {
			return err
		}
		rows += x.Rows
	}
	switch {
	case rows == 0:
		return fmt.Errorf("optim: stream has no rows: %w", linalg.ErrEmpty)
	case p.n == 0:
		p.n = rows
	case rows != p.n:
		return fmt.Errorf("optim: stream has %d rows, want N = %d: %w", rows, p.n, linalg.ErrShape)
	}
	return nil
}

// SolveStream implements StreamSolver: one pass over sd, clipping each block
// and accumulating the statistics block by block (linalg.Stats), then the
// releases and the solve of Solve. Memory is independent of n; see
// StreamData.
//
// In the global form, with BlockRows equal to DefaultBlockRows (the default),
// the result equals Solve's on the same rows bit for bit; other block sizes
// change the float64 summation order of the statistics. The per-class form
// accumulates its Grams block by block, so it agrees with Solve up to
// summation order. With Quantize set, the statistics are exact and the
// global form equals Solve's bit for bit for any BlockRows and row order.
//
// The form is Solve's (UsesPerClass): with neither PerClass nor Global set
// it is chosen at the first block, from d and n (sd.N or the stream's
// header); when n is unknown there, SolveStream uses the global form. The
// budget is then checked at the first block instead of before the pass;
// nothing is released before the pass ends either way.
func (s *LS) SolveStream(ctx context.Context, sd *StreamData, l *accountant.Ledger, src dp.Source) (*Result, error) {
	start := time.Now()
	if err := s.validate(); err != nil {
		return nil, err
	}
	p, err := newStreamPass(sd, s.ClipNorm, s.Quantize)
	if err != nil {
		return nil, err
	}
	k := sd.Classes
	perClass, auto := s.PerClass, !s.PerClass && !s.Global
	var r *run
	if !auto {
		if r, err = s.Privacy.start(s.kinds(perClass), l, src); err != nil {
			return nil, err
		}
	}
	var st *linalg.Stats
	var sums []gramSum
	var byClass [][]float32
	var classSums *mat.Dense
	started := false
	sp := startPass(ctx, "statistics", p.n)
	err = p.run(ctx, func(x *linalg.Matrix32, y []int) error {
		if !started {
			started = true
			if auto {
				perClass = p.n > 0 && s.UsesPerClass(p.n, p.dim, k)
				var err error
				if r, err = s.Privacy.start(s.kinds(perClass), l, src); err != nil {
					return err
				}
			}
			if !perClass {
				var err error
				if st, err = newStats(x.Cols, k, p.q, precision(s.Float64)); err != nil {
					return err
				}
				st.Workers = s.Workers
			} else {
				sums = make([]gramSum, k)
				byClass = make([][]float32, k)
				for c := range sums {
					sums[c] = gramSum{q: p.q, prec: precision(s.Float64), workers: s.Workers}
				}
				classSums = mat.NewDense(k, x.Cols, nil)
			}
		}
		if !perClass {
			if err := st.Add(x, y); err != nil {
				return fmt.Errorf("optim: statistics: %w", err)
			}
			sp.add(x.Rows, p.n)
			return nil
		}
		for c := range byClass {
			byClass[c] = byClass[c][:0]
		}
		for i, c := range y {
			byClass[c] = append(byClass[c], x.Row(i)...)
		}
		addClassSums(classSums, byClass)
		for c, rows := range byClass {
			if len(rows) == 0 {
				continue
			}
			m := &linalg.Matrix32{Rows: len(rows) / x.Cols, Cols: x.Cols, Data: rows}
			if err := sums[c].add(m); err != nil {
				return fmt.Errorf("optim: DP-LS: %w", err)
			}
		}
		sp.add(x.Rows, p.n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("optim: DP-LS: %w", err)
	}
	sp.end(p.n)
	var w *mat.Dense
	if perClass {
		w, err = s.fromClassGrams(ctx, classGrams(sums, p.dim), classSums, p.n, r)
	} else {
		w, err = s.fromStats(ctx, st, p.n, r)
	}
	if err != nil {
		return nil, err
	}
	rep := &Report{Method: "ls", N: p.n, Dim: p.dim, Classes: k}
	r.report(rep, s.Privacy)
	rep.Seconds = time.Since(start).Seconds()
	return &Result{Model: &Model{W: w}, Report: rep}, nil
}

// SolveStream implements StreamSolver: one pass over sd for the Gram of the
// clipped rows, then, for each of the Steps steps, one pass computing the
// clipped gradient sum block by block (losses.Batch.Eval and ClipSum on each
// block, the block sums added in block order). Releases and updates are those
// of Solve. Memory is independent of n; see StreamData.
//
// With BlockRows ≥ n (one block) the result equals Solve's bit for bit; with
// smaller blocks the Gram and the gradient sums are added in another order,
// and the model agrees with Solve's to about 1e-12 relative per step.
func (s *FC) SolveStream(ctx context.Context, sd *StreamData, l *accountant.Ledger, src dp.Source) (*Result, error) {
	start := time.Now()
	if err := s.validate(); err != nil {
		return nil, err
	}
	p, err := newStreamPass(sd, s.ClipNorm, s.Quantize)
	if err != nil {
		return nil, err
	}
	r, err := s.Privacy.start(s.kinds(), l, src)
	if err != nil {
		return nil, err
	}
	gs := gramSum{q: p.q, prec: precision(s.Float64), workers: s.Workers}
	gp := startPass(ctx, "gram", p.n)
	err = p.run(ctx, func(x *linalg.Matrix32, _ []int) error {
		if err := gs.add(x); err != nil {
			return err
		}
		gp.add(x.Rows, p.n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("optim: DP-FC: %w", err)
	}
	gp.end(p.n)
	loss := s.loss()
	batch := losses.Batch{Precision: precision(s.Float64), NoCurvature: true}
	var part *mat.Dense
	gradSum := func(ctx context.Context, w, grad *mat.Dense) (float64, error) {
		first, lossSum := true, 0.0
		err := p.run(ctx, func(x *linalg.Matrix32, y []int) error {
			if err := loss.Eval(&batch, x, y, w, nil, s.Workers); err != nil {
				return err
			}
			if first {
				// grad ← the first block's sum, exactly as Solve's single block.
				first = false
				lossSum = batch.Loss
				return batch.ClipSum(grad, nil, s.GradClipNorm, s.Workers)
			}
			if part == nil {
				part = mat.NewDense(grad.RawMatrix().Rows, grad.RawMatrix().Cols, nil)
			}
			if err := batch.ClipSum(part, nil, s.GradClipNorm, s.Workers); err != nil {
				return err
			}
			grad.Add(grad, part)
			lossSum += batch.Loss
			return nil
		})
		return lossSum, err
	}
	return s.descend(ctx, r, gs.gram(), p.n, sd.Classes, gradSum, start)
}
