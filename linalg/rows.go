package linalg

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Blocks of ScoreGradRows. A block of rowsBlock rows is converted, scored,
// handed to the callback and accumulated into the gradient while it is in
// cache; the gradient of each segment of rowsSegment rows is summed into its
// own partial, and the partials are added in segment order. Both sizes are
// fixed, so the arithmetic of every entry depends on the number of rows alone,
// never on the number of workers.
const (
	rowsBlock   = 32 // rows per block: 32·d float64s (200 KiB at d = 784) stay in L2
	rowsSegment = 64 // rows per gradient partial (a task of the parallel loop)
)

// A RowsFunc receives one block of ScoreGradRows' scores and returns, in
// place, the block's residual weights. On entry s[i*stride+l] is the score
// x_jᵀw_l of class l (l < K) for the example j = first+i of the selection
// (i < len(norms)), and norms[i] is ‖x_j‖, accumulated in float64. On return
// s[i*stride+l] must hold the weight r_jl of x_j in row l of the gradient.
// Entries of s past K in a row are ignored and may be overwritten. A non-nil
// error stops ScoreGradRows (blocks under way on other goroutines finish),
// which returns the error of the lowest failing block. A RowsFunc may be
// called concurrently for different blocks; each call must write only what
// belongs to its rows, and none may read or write dst, which is summed into
// while blocks are still being computed.
type RowsFunc func(first int, s []float64, stride int, norms []float64) error

// RowsWork holds the scratch of ScoreGradRows and ScoreGradRowsPrecision.
// Keeping one across calls (as a DP-SGD loop keeps it across steps) means a
// call allocates nothing once the shapes have been seen. The zero value is
// ready to use. Not safe for concurrent use.
type RowsWork struct {
	wp   []float64 // Float64: W in panels of 12 classes, feature-major
	wp32 []float32 // Float32: W rounded, in panels of 16 classes, feature-major
	// The shape wp32 was last packed for (its padding is zero for it).
	wp32K, wp32D int
	part         []float64     // per-segment gradient partials, each lda×ldc (transposed)
	bufs         []rowsScratch // per worker
	errs         []error       // per segment
	segDone      []int32       // Float32: segment done (atomic)
	job          rowsJob       // the arguments of the current call

	// Team, if not nil, runs the segments: the caller and the Team's
	// goroutines take them in turn (the caller alone if the Team has one
	// worker), and the workers argument is ignored. The results are the
	// same bits as without a Team.
	Team *Team

	teamTask func(sg, g int) // job.teamTask, made once per RowsWork
	teamSum  func(t, g int)  // job.sumTask, made once per RowsWork
	teamFor  *RowsWork       // the RowsWork teamTask was made for (not a copy of it)
}

// rowsJob holds one ScoreGradRows call's arguments, so that its segments run
// as a method rather than a closure (which would be allocated per call).
type rowsJob struct {
	x                *Matrix32
	rows             []int
	f                RowsFunc
	ws               *RowsWork
	m, d, k          int
	kp, ldc, lda, mp int
	plen             int // length of a segment's gradient partial
	useAsm           bool
	f32              bool  // Float32 kernels (segment32)
	failed           int64 // on a Team, the lowest failed segment so far, or segs (atomic)

	// The sum of the partials (sumTask, mergeDone).
	dr       blas64.General
	segs, pc int
	overflow int32 // the Float32 sum overflowed (atomic)
	merging  int32 // 1 while a goroutine adds Float32 partials (atomic)
	merged   int64 // Float32 partials added so far (by the goroutine merging)
}

type rowsScratch struct {
	a     []float64 // Float64: rowsBlock×lda converted rows, row-major, zero-padded
	c     []float64 // rowsBlock×ldc scores, then residual weights
	rp    []float64 // Float64: residual weights in panels of 12 classes (K > 12)
	a32   []float32 // Float32: the block's rows copied, row-major, zero-padded
	rp32  []float32 // Float32: residual weights rounded, in panels of 16 classes
	norms []float64
	pf    int // the first selected row of the block this worker prefetched last, or −1
}

// rowsGrow returns (*buf)[:n], reallocating when the capacity is too small.
func rowsGrow(buf *[]float64, n int) []float64 {
	if cap(*buf) < n {
		*buf = make([]float64, n)
	}
	return (*buf)[:n]
}

// rowsGrow32 is rowsGrow for float32 buffers.
func rowsGrow32(buf *[]float32, n int) []float32 {
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	return (*buf)[:n]
}

// rowsShape returns the layout of a call's blocks and gradient partials in
// precision f32: lda, the row stride of a block of converted rows; ldc and
// kp, the stride of the scores and their number of class panels; and the
// partial's rows and row length. Float64 holds the partial transposed (lda
// features × ldc classes), Float32 as dst (⌈K/6⌉·6 classes × lda features).
func rowsShape(d, k int, f32 bool) (lda, ldc, kp, pr, pc int) {
	if f32 {
		kp = (k + gemm32NR - 1) / gemm32NR
		lda = (d + gemm32NR - 1) / gemm32NR * gemm32NR
		return lda, kp * gemm32NR, kp, (k + gemm32MR - 1) / gemm32MR * gemm32MR, lda
	}
	kp = (k + gemmNR - 1) / gemmNR
	lda = (d + gemmMR - 1) / gemmMR * gemmMR
	return lda, kp * gemmNR, kp, lda, kp * gemmNR
}

// ScoreGradScratch returns the number of float64s of scratch ScoreGradRows
// and ScoreGradRowsPrecision hold in their RowsWork for m selected rows, d
// features and K classes, in either precision (the larger of the two), most
// of it the per-segment gradient partials. Callers use it to choose between
// the fused step and the two GEMMs MulXWtNorms and MulRtX.
func ScoreGradScratch(m, d, k int) int {
	segs := (m + rowsSegment - 1) / rowsSegment
	_, ldc, _, pr, pc := rowsShape(d, k, false)
	_, ldc32, _, pr32, pc32 := rowsShape(d, k, true)
	return max(segs*pr*pc+ldc*d, segs*pr32*pc32+ldc32*d/2)
}

// ScoreGradRows computes, in one pass over the selected rows of X, the scores
// of a linear model and a gradient whose residuals depend on them: the
// forward and backward products of a minibatch step, fused. It is
// ScoreGradRowsPrecision with Float64.
//
// The selection is the rows rows[0], rows[1], … of X (n×d, float32), or all
// n rows in order if rows is nil; a row may be selected more than once. For
// each block of 32 consecutive selected rows X_b, ScoreGradRows computes
// the scores S_b = X_b·Wᵀ (W is K×d) and the row norms, calls f with them,
// and adds R_bᵀ·X_b to the gradient, where R_b is what f left in S_b. On
// return dst (K×d, or empty and then resized; overwritten) holds Σ_b R_bᵀ·X_b
// = Rᵀ·X_sel.
//
// Each row is read from X once and converted to float64 once; products and
// sums are float64. The scores are computed exactly as MulXWt computes them
// (chunks of 256 features, each a chain of fused multiply-adds in feature
// order, added in chunk order), so they equal MulXWt's bit for bit when both
// use the same kernel (not an installed BLAS: ScoreGradRows always uses
// dpopt's own kernels). The gradient sums each block's rows in order, the
// blocks of a 64-row segment in order, and the segments' partials in order,
// so its error is that of float64 summation of m terms; it differs from
// MulRtX's (which sums 256-row blocks) in rounding only.
//
// Segments are spread over workers goroutines (0 means GOMAXPROCS), or over
// the caller and the goroutines of ws.Team if it is set; the result, and
// every value f sees, is bit-identical for any workers count and with or
// without a Team.
// Scratch of ScoreGradScratch(m, d, K) float64s is kept in ws (nil means
// fresh scratch for this call), so this is meant for minibatches: for
// thousands of rows and large K·d, MulXWtNorms and MulRtX use less memory.
//
// ScoreGradRows returns an error wrapping ErrEmpty for an empty X, W or
// selection or a nil f, ErrShape for mismatched dimensions, a selected index
// outside [0, n) or a dst that is also W, ErrNonFinite for a NaN, ±Inf or
// over-large (|x| > MaxAbs) entry of a selected row of X, of W or of the
// residual weights, and ErrParam for negative workers; or f's error. dst is
// then unspecified.
func ScoreGradRows(dst *mat.Dense, x *Matrix32, rows []int, w *mat.Dense, f RowsFunc, ws *RowsWork, workers int) error {
	return ScoreGradRowsPrecision(dst, x, rows, w, f, ws, workers, Float64)
}

// ScoreGradRowsPrecision is ScoreGradRows in precision p: with Float64 it is
// ScoreGradRows, bit for bit; with Float32 both products are computed by the
// float32 kernels of MulXWtPrecision and MulRtXPrecision, each row read from
// X once and copied (not converted) once.
//
// With Float32 the scores are computed exactly as MulXWtPrecision computes
// them with Float32 (W rounded to float32; chunks of 256 features, float32
// products and sums within a chunk, chunk sums added in float64), so they
// equal its scores bit for bit when both use dpopt's kernels; the norms are
// float64 and the same bits as with Float64. The residual weights f leaves
// are rounded to float32 and each block's gradient R_bᵀ·X_b is summed in
// float32 over its at most 32 rows, then added in float64 in the order of
// ScoreGradRows: an entry g_lf carries a rounding error of at most about
// 34·2⁻²⁴ ≈ 2·10⁻⁶ of Σ_j |r_jl·x_jf| from the float32 blocks (plus the
// float64 summation's), smaller than MulRtXPrecision's bound for its
// 256-row blocks, and an absolute 2⁻¹⁴⁹ per float32 operation that
// underflows. The result is bit-identical for any workers count, and the
// assembly and pure-Go kernels give the same bits.
//
// Float32 never overflows silently: if W does not fit float32, the call is
// computed in Float64 from the start; if a float32 score or gradient sum
// overflows, or a residual weight does not fit float32, the whole call is
// computed again in Float64, so f may then be called a second time for the
// same rows, with scores now computed in float64, and must leave their
// weights again.
//
// Errors are those of ScoreGradRows, plus one wrapping ErrParam for an
// unknown precision.
func ScoreGradRowsPrecision(dst *mat.Dense, x *Matrix32, rows []int, w *mat.Dense, f RowsFunc, ws *RowsWork, workers int, p Precision) error {
	if err := p.check(); err != nil {
		return err
	}
	if err := gemmCheckMatrix32("X", x); err != nil {
		return err
	}
	if w == nil || w.IsEmpty() {
		return fmt.Errorf("linalg: W has no rows or columns: %w", ErrEmpty)
	}
	wr := w.RawMatrix() // its entries are checked below, as it is packed
	n, d, k := x.Rows, x.Cols, wr.Rows
	if wr.Cols != d {
		return fmt.Errorf("linalg: X·Wᵀ with X %d×%d and W %d×%d: %w", n, d, wr.Rows, wr.Cols, ErrShape)
	}
	if f == nil {
		return fmt.Errorf("linalg: nil RowsFunc: %w", ErrEmpty)
	}
	m := n
	if rows != nil {
		m = len(rows)
		for j, i := range rows {
			if i < 0 || i >= n {
				return fmt.Errorf("linalg: selected row %d is row %d of %d: %w", j, i, n, ErrShape)
			}
		}
	}
	if m == 0 {
		return fmt.Errorf("linalg: no rows selected: %w", ErrEmpty)
	}
	if workers < 0 {
		return fmt.Errorf("linalg: workers = %d, want ≥ 0 (0 means GOMAXPROCS): %w", workers, ErrParam)
	}
	dr, err := gemmPrepareDst(dst, k, d, w)
	if err != nil {
		return err
	}
	if ws == nil {
		ws = new(RowsWork)
	}
	// W packed in float32 is finite: its check is the packing's.
	finite := false
	if p == Float32 && rowsPackW32(ws, wr) {
		err := scoreGradRows(dr, x, rows, m, k, f, ws, workers, true)
		if err != errRowsOverflow {
			return err
		}
		finite = true
	}
	if !finite {
		if _, err := gemmCheckDense("W", w); err != nil {
			return err
		}
	}
	rowsPackW64(ws, wr)
	return scoreGradRows(dr, x, rows, m, k, f, ws, workers, false)
}

// errRowsOverflow reports a float32 overflow of the Float32 path, which is
// then computed again in Float64. It never reaches a caller.
var errRowsOverflow = errors.New("linalg: internal: float32 overflow")

// rowsPackW64 packs W in panels of 12 classes, feature-major, as MulXWt
// packs it.
func rowsPackW64(ws *RowsWork, wr blas64.General) {
	k, d := wr.Rows, wr.Cols
	kp := (k + gemmNR - 1) / gemmNR
	wp := rowsGrow(&ws.wp, kp*gemmNR*d)
	clear(wp)
	for l := range k {
		p, j := l/gemmNR, l%gemmNR
		panel := wp[p*gemmNR*d:]
		for r, v := range wr.Data[l*wr.Stride : l*wr.Stride+d] {
			panel[gemmNR*r+j] = v
		}
	}
}

// rowsPackW32 rounds W to float32 and packs it in panels of 16 classes,
// feature-major, as mulXWt32 packs it. It reports false if an entry does not
// fit float32 (NaN and ±Inf included). The padding classes of the last
// panel (whose scores are computed and ignored) are zeroed when the buffer
// is new or last held another shape; nothing writes them otherwise.
func rowsPackW32(ws *RowsWork, wr blas64.General) bool {
	k, d := wr.Rows, wr.Cols
	kp := (k + gemm32NR - 1) / gemm32NR
	n := kp * gemm32NR * d
	if cap(ws.wp32) < n || ws.wp32K != k || ws.wp32D != d {
		wp := rowsGrow32(&ws.wp32, n)
		clear(wp)
		ws.wp32K, ws.wp32D = k, d
	}
	wp := ws.wp32[:n]
	for p := range kp {
		l0 := p * gemm32NR
		panel := wp[l0*d : (l0+gemm32NR)*d]
		for l := range min(gemm32NR, k-l0) {
			row := wr.Data[(l0+l)*wr.Stride : (l0+l)*wr.Stride+d]
			for r, v := range row {
				if !gemm32Fits(v) {
					return false
				}
				panel[gemm32NR*r+l] = float32(v)
			}
		}
	}
	return true
}

// scoreGradRows runs the segments of a checked call on packed W and sums
// their partials into dr. With f32 it returns errRowsOverflow if a float32
// sum overflowed.
func scoreGradRows(dr blas64.General, x *Matrix32, rows []int, m, k int, f RowsFunc, ws *RowsWork, workers int, f32 bool) error {
	d := x.Cols
	lda, ldc, kp, pr, pc := rowsShape(d, k, f32)
	plen := pr * pc
	segs := (m + rowsSegment - 1) / rowsSegment
	nw := workers
	if nw == 0 {
		nw = runtime.GOMAXPROCS(0)
	}
	nw = max(1, min(nw, segs))
	var team *teamState
	if ws.Team != nil {
		// The Team's workers, or the caller alone.
		nw = 1
		if ws.Team.s.n > 1 && segs > 1 {
			team = ws.Team.s
			nw = team.n
		}
	}
	rowsGrow(&ws.part, segs*plen) // the segments' partials
	if len(ws.bufs) < nw {
		ws.bufs = append(ws.bufs, make([]rowsScratch, nw-len(ws.bufs))...)
	}
	for g := range ws.bufs[:nw] {
		ws.bufs[g].pf = -1
	}
	if cap(ws.errs) < segs {
		ws.errs = make([]error, segs)
	}
	errs := ws.errs[:segs]
	clear(errs)
	mr := gemmMR
	if f32 {
		mr = gemm32MR
	}
	mp := (rowsBlock + mr - 1) / mr * mr

	ws.job = rowsJob{x: x, rows: rows, f: f, ws: ws, m: m, d: d, k: k, kp: kp, ldc: ldc, lda: lda, mp: mp,
		plen: plen, useAsm: gemmUseAsm, f32: f32, dr: dr, segs: segs, pc: pc}
	defer func() { ws.job = rowsJob{} }()
	j := &ws.job
	if f32 {
		if cap(ws.segDone) < segs {
			ws.segDone = make([]int32, segs)
		}
		ws.segDone = ws.segDone[:segs]
		clear(ws.segDone)
	}
	if team != nil {
		if ws.teamFor != ws {
			ws.teamTask, ws.teamSum, ws.teamFor = j.teamTask, j.sumTask, ws
		}
		j.failed = int64(segs)
		team.run(segs, ws.teamTask)
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
	} else if nw == 1 {
		for sg := range segs {
			if err := j.run(sg, 0); err != nil {
				return err
			}
		}
	} else {
		var next atomic.Int64
		var failed atomic.Bool
		var wg sync.WaitGroup
		for g := range nw {
			wg.Go(func() {
				for !failed.Load() {
					sg := int(next.Add(1) - 1)
					if sg >= segs {
						return
					}
					if errs[sg] = j.run(sg, g); errs[sg] != nil {
						failed.Store(true)
					}
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
	}

	if f32 {
		// dst = Σ_segments partial, in segment order, summed as the
		// segments finished (mergeDone); what is left is merged here.
		j.mergeDone()
		if j.merged != int64(segs) {
			return fmt.Errorf("linalg: internal: %d of %d segments summed", j.merged, segs)
		}
		if j.overflow != 0 {
			return errRowsOverflow
		}
		return nil
	}
	// dst = Σ_segments partial, in segment order, in column tasks (on the
	// Team if there is one: each entry's sum is the same either way).
	tasks := j.sumTasks()
	if team != nil {
		team.run(tasks, ws.teamSum)
	} else {
		for t := range tasks {
			j.sumTask(t, 0)
		}
	}
	if j.overflow != 0 {
		return errRowsOverflow
	}
	return nil
}

// rowsSumFeatures is the number of features per task of the Float64 sum.
const rowsSumFeatures = 128

// sumTasks returns the number of tasks of the Float64 sum of the partials:
// one per rowsSumFeatures features.
func (j *rowsJob) sumTasks() int {
	return (j.d + rowsSumFeatures - 1) / rowsSumFeatures
}

// sumTask adds the segments' Float64 partials (transposed), in segment
// order, for features [t·rowsSumFeatures, (t+1)·rowsSumFeatures) of every
// class, and writes them to dst.
func (j *rowsJob) sumTask(t, _ int) {
	part, plen, pc, dr := j.ws.part, j.plen, j.pc, j.dr
	lo, hi := t*rowsSumFeatures*pc, min((t+1)*rowsSumFeatures, j.d)*pc
	sum := part[lo:hi]
	for sg := 1; sg < j.segs; sg++ {
		rowsAdd(sum, part[sg*plen+lo:sg*plen+hi])
	}
	for f := lo / pc; f < hi/pc; f++ {
		for l, v := range part[f*pc : f*pc+j.k] {
			dr.Data[l*dr.Stride+f] = v
		}
	}
}

// rowsAdd sets dst[i] += src[i] for i < len(dst) ≤ len(src), four at a
// time without bounds checks in the loop.
func rowsAdd(dst, src []float64) {
	src = src[:len(dst)]
	n4 := len(dst) &^ 3
	for i := 0; i < n4; i += 4 {
		d, s := dst[i:i+4:i+4], src[i:i+4:i+4]
		d[0] += s[0]
		d[1] += s[1]
		d[2] += s[2]
		d[3] += s[3]
	}
	for i := n4; i < len(dst); i++ {
		dst[i] += src[i]
	}
}

// teamTask runs segment sg on worker g for a Team, recording its error.
// Segments are claimed in order, so every segment below a failing one has
// been claimed and runs: a segment above the lowest failure so far is
// skipped, and the error returned is still the lowest failing segment's.
func (j *rowsJob) teamTask(sg, g int) {
	if int64(sg) > atomic.LoadInt64(&j.failed) {
		return
	}
	if j.ws.errs[sg] = j.run(sg, g); j.ws.errs[sg] != nil {
		for {
			f := atomic.LoadInt64(&j.failed)
			if int64(sg) >= f || atomic.CompareAndSwapInt64(&j.failed, f, int64(sg)) {
				break
			}
		}
	}
}

// run runs segment sg on worker g in the job's precision.
func (j *rowsJob) run(sg, g int) error {
	if j.f32 {
		err := j.segment32(sg, g)
		j.finish(sg)
		return err
	}
	return j.segment(sg, g)
}

// finish marks Float32 segment sg done (computed or failed) and sums what
// it can into dst.
func (j *rowsJob) finish(sg int) {
	atomic.StoreInt32(&j.ws.segDone[sg], 1)
	j.mergeDone()
}

// mergeDone adds to dst, in segment order, the partials of the segments that
// are done and follow those already added, one goroutine at a time: dst =
// p₀, then dst += p₁, dst += p₂, … — the bits of summing them all at the end
// — while other segments are still being computed. After adding a run of
// segments it looks again, so that a segment marked done while another
// goroutine held the turn is not left behind. The last segment's sum is
// checked for overflow.
func (j *rowsJob) mergeDone() {
	done := j.ws.segDone
	for {
		if !atomic.CompareAndSwapInt32(&j.merging, 0, 1) {
			return // the goroutine adding looks again after it releases
		}
		m := int(j.merged)
		for ; m < j.segs && atomic.LoadInt32(&done[m]) == 1; m++ {
			j.mergeSegment(m)
		}
		j.merged = int64(m)
		atomic.StoreInt32(&j.merging, 0)
		if m == j.segs || atomic.LoadInt32(&done[m]) == 0 {
			return
		}
	}
}

// mergeSegment adds segment sg's Float32 partial (laid out as dst) into dst,
// or copies it there for sg = 0; after the last, it checks dst.
func (j *rowsJob) mergeSegment(sg int) {
	part, dr, pc, d := j.ws.part[sg*j.plen:(sg+1)*j.plen], j.dr, j.pc, j.d
	for l := range j.k {
		out := dr.Data[l*dr.Stride : l*dr.Stride+d]
		if sg == 0 {
			copy(out, part[l*pc:l*pc+d])
		} else {
			rowsAdd(out, part[l*pc:l*pc+d])
		}
		if sg == j.segs-1 && !gemmFinite64(out) {
			atomic.StoreInt32(&j.overflow, 1)
		}
	}
}

// A rowsPrefetcher asks for the selected rows of the next block to be
// brought into cache while the kernels of the current block run, a few cache
// lines after each kernel call in proportion to the call's work, so that the
// loads are spread over the block's arithmetic instead of stalling it.
type rowsPrefetcher struct {
	j       *rowsJob
	i, end  int // the selected row being prefetched, and the end of the block
	line    int // the next line of row i (in float32s from the row's start)
	credit  int // work done, times the block's lines, not yet paid in lines
	lines   int // lines of the block
	work    int // kernel work of the current block
	perLine int // float32s per 64-byte line
}

// start arms the prefetcher for the block of selected rows at b0 (if any),
// to be spread over kernel calls of total work (k steps summed over calls).
func (p *rowsPrefetcher) start(j *rowsJob, b0, work int) {
	*p = rowsPrefetcher{j: j, i: b0, end: min(b0+rowsBlock, j.m), work: max(1, work), perLine: 16}
	if p.i < p.end {
		p.lines = (p.end - p.i) * ((j.d + p.perLine - 1) / p.perLine)
	}
}

// tick is called after a kernel call of work k steps.
func (p *rowsPrefetcher) tick(k int) {
	if p.i >= p.end {
		return
	}
	p.credit += k * p.lines
	if n := p.credit / p.work; n > 0 {
		p.credit -= n * p.work
		p.fetch(n)
	}
}

// fetch prefetches the next n lines.
func (p *rowsPrefetcher) fetch(n int) {
	j := p.j
	for n > 0 && p.i < p.end {
		r := p.i
		if j.rows != nil {
			r = j.rows[r]
		}
		row := j.x.Data[r*j.d : (r+1)*j.d]
		e := min(j.d, p.line+n*p.perLine)
		rowsPrefetch(row[p.line:e])
		n -= (e - p.line + p.perLine - 1) / p.perLine
		if p.line = e; e == j.d {
			p.i, p.line = p.i+1, 0
		}
	}
}

// finish prefetches the lines not yet prefetched.
func (p *rowsPrefetcher) finish() { p.fetch(p.lines) }

// prefetchRow asks for selected row i to be brought into cache.
func (j *rowsJob) prefetchRow(i int) {
	if j.rows != nil {
		i = j.rows[i]
	}
	rowsPrefetch(j.x.Data[i*j.d : (i+1)*j.d])
}

// gatherRows copies the mb rows of the block at b0 of the selection into a
// (row i at a[i*lda:], zeros past d) with conv, chunk by chunk of kcMax
// features, and sets norms[i] = ‖x_i‖ from the chunks' sums of squares, in
// the order of MulXWt and MulXWtPrecision. Unless the block was prefetched,
// each row asks for the one two ahead. A row with a NaN, ±Inf or too large a
// value gives rowsBadRow's error.
func gatherRows[T float32 | float64](j *rowsJob, a []T, norms []float64, b0, mb, lda, kcMax int, fetched bool,
	conv func(useAsm bool, dst []T, src []float32) (float64, bool)) error {
	x, rows, d, useAsm := j.x, j.rows, j.d, j.useAsm
	for i := range mb {
		if !fetched && i+2 < mb {
			j.prefetchRow(b0 + i + 2)
		}
		ri := b0 + i
		if rows != nil {
			ri = rows[ri]
		}
		src := x.Data[ri*d : ri*d+d]
		ai := a[i*lda : (i+1)*lda]
		var ss float64
		for c0 := 0; c0 < d; c0 += kcMax {
			kc := min(kcMax, d-c0)
			v, ok := conv(useAsm, ai[c0:c0+kc], src[c0:c0+kc])
			if !ok {
				return rowsBadRow(x, ri)
			}
			ss += v
		}
		clear(ai[d:])
		norms[i] = math.Sqrt(ss)
	}
	return nil
}

// segment computes the scores, the callback and the gradient partial of
// segment sg on worker g's scratch, in float64.
func (j *rowsJob) segment(sg, g int) error {
	ws, f := j.ws, j.f
	m, d, k, kp, ldc, lda, mp, useAsm := j.m, j.d, j.k, j.kp, j.ldc, j.lda, j.mp, j.useAsm
	wp, part := ws.wp, ws.part
	s := &ws.bufs[g]
	a := rowsGrow(&s.a, mp*lda)
	c := rowsGrow(&s.c, mp*ldc)
	norms := rowsGrow(&s.norms, rowsBlock)
	var rp []float64
	if kp > 1 {
		rp = rowsGrow(&s.rp, kp*gemmNR*rowsBlock)
	}
	gt := part[sg*j.plen : (sg+1)*j.plen]
	clear(gt)
	var pf rowsPrefetcher
	end := min((sg+1)*rowsSegment, m)
	for b0 := sg * rowsSegment; b0 < end; b0 += rowsBlock {
		mb := min(rowsBlock, end-b0)
		mbp := (mb + gemmMR - 1) / gemmMR * gemmMR
		fetched := s.pf == b0
		// Gather and convert, with the squared norms in MulXWt's order.
		if err := gatherRows(j, a, norms, b0, mb, lda, gemmKC, fetched, gemmConv); err != nil {
			return err
		}
		clear(a[mb*lda : mbp*lda])
		// The next block's rows are prefetched while this one's products
		// run.
		s.pf = b0 + rowsBlock
		pf.start(j, s.pf, kp*(mb*lda/gemmMR+d*mbp/gemmMR))
		// Scores: chunks of gemmKC features outside, as MulXWt.
		cb := c[:mbp*ldc]
		clear(cb)
		for c0 := 0; c0 < d; c0 += gemmKC {
			kc := min(gemmKC, d-c0)
			for p := range kp {
				b := wp[p*gemmNR*d+gemmNR*c0:]
				for i := 0; i < mbp; i += gemmMR {
					gemmKernel(useAsm, kc, a[i*lda+c0:], lda, 1, b, cb[i*ldc+p*gemmNR:], ldc)
					pf.tick(kc)
				}
			}
		}
		if err := f(b0, cb[:mb*ldc], ldc, norms[:mb]); err != nil {
			return err
		}
		for i := range mb {
			ci := cb[i*ldc : (i+1)*ldc]
			for l, v := range ci[:k] {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("linalg: residual weight (%d, %d) = %v: %w", b0+i, l, v, ErrNonFinite)
				}
			}
			clear(ci[k:])
		}
		// Gradient, transposed: gt (lda×ldc) += X_bᵀ·R_b, 4 features ×
		// 12 classes per tile, the block's rows summed in order.
		bp := cb
		for p := range kp {
			if kp > 1 {
				bp = rp[p*gemmNR*mb : (p+1)*gemmNR*mb]
				for i := range mb {
					copy(bp[i*gemmNR:(i+1)*gemmNR], cb[i*ldc+p*gemmNR:i*ldc+(p+1)*gemmNR])
				}
			}
			for f0 := 0; f0 < lda; f0 += gemmMR {
				gemmKernel(useAsm, mb, a[f0:], 1, lda, bp, gt[f0*ldc+p*gemmNR:], ldc)
				pf.tick(mb)
			}
		}
		pf.finish()
	}
	return nil
}

// rowsBadRow reports the first bad entry of row i of x.
func rowsBadRow(x *Matrix32, i int) error {
	for j, v := range x.Row(i) {
		if f := float64(v); math.IsNaN(f) || math.Abs(f) > MaxAbs {
			return fmt.Errorf("linalg: entry (%d, %d) = %v: %w", i, j, v, ErrNonFinite)
		}
	}
	return fmt.Errorf("linalg: internal: row %d reported bad but is finite", i)
}
