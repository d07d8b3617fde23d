//go:build amd64 && !purego

#include "textflag.h"

// One step of the 4×24 float32 tile: row r of the B panel (24 values, at
// off(DI)) in Y12:Y14, each of the 4 A values (at aoff(SI)) broadcast in turn
// into Y15, 12 fused multiply-adds (one rounding each). A rows are 16 bytes
// apart, B rows 96.
#define GRAM32STEP(off, aoff) \
	VMOVUPS off(DI), Y12 \
	VMOVUPS off+32(DI), Y13 \
	VMOVUPS off+64(DI), Y14 \
	VBROADCASTSS aoff(SI), Y15 \
	VFMADD231PS Y12, Y15, Y0 \
	VFMADD231PS Y13, Y15, Y1 \
	VFMADD231PS Y14, Y15, Y2 \
	VBROADCASTSS aoff+4(SI), Y15 \
	VFMADD231PS Y12, Y15, Y3 \
	VFMADD231PS Y13, Y15, Y4 \
	VFMADD231PS Y14, Y15, Y5 \
	VBROADCASTSS aoff+8(SI), Y15 \
	VFMADD231PS Y12, Y15, Y6 \
	VFMADD231PS Y13, Y15, Y7 \
	VFMADD231PS Y14, Y15, Y8 \
	VBROADCASTSS aoff+12(SI), Y15 \
	VFMADD231PS Y12, Y15, Y9 \
	VFMADD231PS Y13, Y15, Y10 \
	VFMADD231PS Y14, Y15, Y11

// Converts the 8 float32 of accumulator x (and its upper half, extracted
// into xx) to float64 and adds them to the 8 float64 at off(DX).
#define GRAM32ADD8(x, xx, off) \
	VCVTPS2PD xx, Y12 \
	VADDPD off(DX), Y12, Y12 \
	VMOVUPD Y12, off(DX) \
	VEXTRACTF128 $1, x, X13 \
	VCVTPS2PD X13, Y13 \
	VADDPD off+32(DX), Y13, Y13 \
	VMOVUPD Y13, off+32(DX)

// Adds accumulators x, y, z (24 float32) to the 24 float64 of C at DX and
// advances DX by one row (R8 bytes).
#define GRAM32STORE(x, xx, y, yy, z, zz) \
	GRAM32ADD8(x, xx, 0) \
	GRAM32ADD8(y, yy, 64) \
	GRAM32ADD8(z, zz, 128) \
	ADDQ R8, DX

// func gram32KernelAVX2(k int, a, b *float32, c *float64, ldc int)
//
// For i < 4, j < 24: s = 0 (float32); for r < k: s = fma(a[4r+i], b[24r+j], s),
// rounded once to float32; then c[i*ldc+j] += float64(s).
// Requires k ≥ 1.
TEXT ·gram32KernelAVX2(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $3, R8

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail

loop4:
	PREFETCHT0 768(DI)
	GRAM32STEP(0, 0)
	PREFETCHT0 832(DI)
	GRAM32STEP(96, 16)
	PREFETCHT0 896(DI)
	GRAM32STEP(192, 32)
	PREFETCHT0 960(DI)
	GRAM32STEP(288, 48)
	ADDQ $64, SI
	ADDQ $384, DI
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	GRAM32STEP(0, 0)
	ADDQ $16, SI
	ADDQ $96, DI
	DECQ CX
	JNZ  loop1

store:
	GRAM32STORE(Y0, X0, Y1, X1, Y2, X2)
	GRAM32STORE(Y3, X3, Y4, X4, Y5, X5)
	GRAM32STORE(Y6, X6, Y7, X7, Y8, X8)
	GRAM32STORE(Y9, X9, Y10, X10, Y11, X11)
	VZEROUPPER
	RET

// Classifies the 8 float32 in y (overwritten with their magnitudes' bits):
// Y13 |= (bits > max, Y9); Y14 |= (bits > hi, Y10) | (lo > bits > 0, Y11).
#define GRAM32CLASS(y) \
	VPAND Y8, y, y \
	VPCMPGTD Y9, y, Y3 \
	VPOR Y3, Y13, Y13 \
	VPCMPGTD Y10, y, Y4 \
	VPCMPGTD y, Y11, Y5 \
	VPCMPGTD Y12, y, Y6 \
	VPAND Y5, Y6, Y5 \
	VPOR Y4, Y5, Y4 \
	VPOR Y4, Y14, Y14

// Stores the two 4-value quarters of y (x its lower half) at R11 and
// R11+R10, advancing R11 by 2·R10.
#define GRAM32QUARTER(x, y) \
	VMOVUPS x, (R11) \
	ADDQ R10, R11 \
	VEXTRACTF128 $1, y, X3 \
	VMOVUPS X3, (R11) \
	ADDQ R10, R11

// func gram32PackPanelAVX2(dst, dstA, src *float32, rows, ldx, strideA int, maxBits, hiBits, loBits uint32) (bad, wide bool)
//
// For i < rows: dst[24i+j] = src[i*ldx+j], j < 24, and
// dstA[t*strideA+4i+j] = src[i*ldx+4t+j], t < 6, j < 4, classifying each
// value as GRAM32CLASS does. Requires rows ≥ 1.
TEXT ·gram32PackPanelAVX2(SB), NOSPLIT, $0-66
	MOVQ dst+0(FP), DI
	MOVQ dstA+8(FP), R9
	MOVQ src+16(FP), SI
	MOVQ rows+24(FP), CX
	MOVQ ldx+32(FP), R12
	SHLQ $2, R12
	MOVQ strideA+40(FP), R10
	SHLQ $2, R10
	MOVL $0x7fffffff, AX
	VMOVD AX, X8
	VPBROADCASTD X8, Y8
	MOVL maxBits+48(FP), AX
	VMOVD AX, X9
	VPBROADCASTD X9, Y9
	MOVL hiBits+52(FP), AX
	VMOVD AX, X10
	VPBROADCASTD X10, Y10
	MOVL loBits+56(FP), AX
	VMOVD AX, X11
	VPBROADCASTD X11, Y11
	VPXOR Y12, Y12, Y12
	VPXOR Y13, Y13, Y13
	VPXOR Y14, Y14, Y14

packloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	MOVQ R9, R11
	GRAM32QUARTER(X0, Y0)
	GRAM32QUARTER(X1, Y1)
	GRAM32QUARTER(X2, Y2)
	GRAM32CLASS(Y0)
	GRAM32CLASS(Y1)
	GRAM32CLASS(Y2)
	ADDQ R12, SI
	ADDQ $96, DI
	ADDQ $16, R9
	DECQ CX
	JNZ  packloop

	VMOVMSKPS Y13, AX
	TESTL AX, AX
	SETNE bad+64(FP)
	VMOVMSKPS Y14, AX
	TESTL AX, AX
	SETNE wide+65(FP)
	VZEROUPPER
	RET
