package linalg

import (
	"fmt"
	"math"
)

// segment32 is segment with float32 kernels. The block's rows are copied
// (and checked, and their squares summed in float64, as gemmConv does) into
// a row-major float32 block of lda = ⌈d/16⌉·16 columns. The scores are
// 6-row × 16-class tiles over chunks of gemm32KC features, exactly as
// mulXWt32 computes them. The residual weights are rounded to float32, row
// by row (ldr = ⌈K/6⌉·6 classes, zero past K), and the gradient partial,
// ldr classes × lda features, gets 6-class × 16-feature tiles summed over
// the block's rows (gemm32KernelLd, B being the block's rows in place). It
// returns errRowsOverflow if a score overflows float32 or a residual weight
// does not fit it (the gradient's sums are checked by the caller).
func (j *rowsJob) segment32(sg, g int) error {
	ws, f := j.ws, j.f
	m, d, k, kp, ldc, lda, mp, useAsm := j.m, j.d, j.k, j.kp, j.ldc, j.lda, j.mp, j.useAsm
	kg := (k + gemm32MR - 1) / gemm32MR
	ldr := kg * gemm32MR
	wp, part := ws.wp32, ws.part
	s := &ws.bufs[g]
	a := rowsGrow32(&s.a32, mp*lda)
	c := rowsGrow(&s.c, mp*ldc)
	norms := rowsGrow(&s.norms, rowsBlock)
	rr := rowsGrow32(&s.rp32, ldr*rowsBlock)
	gt := part[sg*j.plen : (sg+1)*j.plen]
	// Only the K classes' rows are read; the padding classes' rows, whose
	// residual weights are 0, are never cleared.
	clear(gt[:k*lda])
	var pf rowsPrefetcher
	end := min((sg+1)*rowsSegment, m)
	for b0 := sg * rowsSegment; b0 < end; b0 += rowsBlock {
		mb := min(rowsBlock, end-b0)
		mbp := (mb + gemm32MR - 1) / gemm32MR * gemm32MR
		fetched := s.pf == b0
		// Gather and copy, with the squared norms in MulXWt's order.
		if err := gatherRows(j, a, norms, b0, mb, lda, gemm32KC, fetched, gemm32Conv); err != nil {
			return err
		}
		clear(a[mb*lda : mbp*lda])
		s.pf = b0 + rowsBlock
		pf.start(j, s.pf, kp*d*mbp/gemm32MR+kg*mb*lda/gemm32NR)
		// Scores: chunks of gemm32KC features outside, each tile's chunk
		// summed in float32 and added to its float64 score, as mulXWt32.
		cb := c[:mbp*ldc]
		clear(cb)
		for c0 := 0; c0 < d; c0 += gemm32KC {
			kc := min(gemm32KC, d-c0)
			for p := range kp {
				b := wp[p*gemm32NR*d+gemm32NR*c0:]
				for i := 0; i < mbp; i += gemm32MR {
					gemm32Kernel(useAsm, kc, a[i*lda+c0:], lda, 1, b, cb[i*ldc+p*gemm32NR:], ldc)
					pf.tick(kc)
				}
			}
		}
		for i := range mb {
			if !gemmFinite64(cb[i*ldc : i*ldc+k]) {
				return errRowsOverflow
			}
		}
		if err := f(b0, cb[:mb*ldc], ldc, norms[:mb]); err != nil {
			return err
		}
		// R_b rounded to float32, row i at rr[i*ldr:], zero past K.
		for i := range mb {
			ci := cb[i*ldc : i*ldc+k]
			ri := rr[i*ldr : (i+1)*ldr]
			for l, v := range ci {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("linalg: residual weight (%d, %d) = %v: %w", b0+i, l, v, ErrNonFinite)
				}
				if !gemm32Fits(v) {
					return errRowsOverflow
				}
				ri[l] = float32(v)
			}
			clear(ri[k:])
		}
		// Gradient: 6 classes × 16 features per tile, the block's rows
		// summed in order in float32, then added to the partial. Feature
		// panels outside, so that a panel's lines of the block (one per
		// row) are read from L2 once for all class groups.
		for f0 := 0; f0 < lda; f0 += gemm32NR {
			for gi := range kg {
				gemm32KernelLd(useAsm, mb, rr[gi*gemm32MR:], 1, ldr, a[f0:], lda, gt[gi*gemm32MR*lda+f0:], lda)
				pf.tick(mb)
			}
		}
		pf.finish()
	}
	return nil
}
