//go:build amd64 && !purego

#include "textflag.h"

// Multiplies the A value broadcast in Y14 by the B row (Y12, Y13 and the
// third vector at mem) and adds the products into accumulators x, y, z,
// with the product in Y15: unfused, each product rounded to float32.
#define GRAM32ROW(mem, x, y, z) \
	VMULPS Y12, Y14, Y15 \
	VADDPS Y15, x, x \
	VMULPS Y13, Y14, Y15 \
	VADDPS Y15, y, y \
	VMULPS mem, Y14, Y15 \
	VADDPS Y15, z, z

// One step of the 4×24 float32 tile: row r of the B panel (24 values) at
// off(DI), the 4 A values at off(SI); SI and DI share the panel stride of 96
// bytes.
#define GRAM32STEP(off) \
	VMOVUPS off(DI), Y12 \
	VMOVUPS off+32(DI), Y13 \
	VBROADCASTSS off(SI), Y14 \
	GRAM32ROW(off+64(DI), Y0, Y1, Y2) \
	VBROADCASTSS off+4(SI), Y14 \
	GRAM32ROW(off+64(DI), Y3, Y4, Y5) \
	VBROADCASTSS off+8(SI), Y14 \
	GRAM32ROW(off+64(DI), Y6, Y7, Y8) \
	VBROADCASTSS off+12(SI), Y14 \
	GRAM32ROW(off+64(DI), Y9, Y10, Y11)

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
// For i < 4, j < 24: s = 0 (float32); for r < k: s = s + a[24r+i]·b[24r+j],
// product and sum each rounded to float32; then c[i*ldc+j] += float64(s).
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
	GRAM32STEP(0)
	PREFETCHT0 832(DI)
	GRAM32STEP(96)
	PREFETCHT0 896(DI)
	GRAM32STEP(192)
	PREFETCHT0 960(DI)
	GRAM32STEP(288)
	ADDQ $384, SI
	ADDQ $384, DI
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	GRAM32STEP(0)
	ADDQ $96, SI
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

// func gram32PackRowAVX2(dst, src *float32, panels, stride int, maxBits, hiBits, loBits uint32) (bad, wide bool)
//
// For p < panels: dst[p*stride+j] = src[24p+j], j < 24, classifying each
// value as GRAM32CLASS does. Requires panels ≥ 1.
TEXT ·gram32PackRowAVX2(SB), NOSPLIT, $0-50
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ panels+16(FP), CX
	MOVQ stride+24(FP), R8
	SHLQ $2, R8
	MOVL $0x7fffffff, AX
	MOVL AX, X8
	VPBROADCASTD X8, Y8
	MOVL maxBits+32(FP), AX
	MOVL AX, X9
	VPBROADCASTD X9, Y9
	MOVL hiBits+36(FP), AX
	MOVL AX, X10
	VPBROADCASTD X10, Y10
	MOVL loBits+40(FP), AX
	MOVL AX, X11
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
	GRAM32CLASS(Y0)
	GRAM32CLASS(Y1)
	GRAM32CLASS(Y2)
	ADDQ $96, SI
	ADDQ R8, DI
	DECQ CX
	JNZ  packloop

	VMOVMSKPS Y13, AX
	TESTL AX, AX
	SETNE bad+48(FP)
	VMOVMSKPS Y14, AX
	TESTL AX, AX
	SETNE wide+49(FP)
	VZEROUPPER
	RET
