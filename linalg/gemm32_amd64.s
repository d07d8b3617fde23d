//go:build amd64 && !purego

#include "textflag.h"

// One step r of the 6×16 float32 tile of gemm32KernelAVX2: row r of B (16
// values, 64 bytes) in Y12:Y13; the six A values a[r*sa + i*ia], i < 6,
// broadcast in turn from (SI), (SI)+ia, (SI)+2ia, (SI)+3ia, (SI)+4ia,
// (SI)+5ia into Y14 (R9 = ia bytes, R10 = 3·ia, R12 = 5·ia); each product
// rounded to float32 (VMULPS into Y15), then added to its accumulator and
// rounded (VADDPS): not fused, so that the pure-Go kernel, s +=
// float32(a*b), gives the same bits. SI advances by sa bytes (R11), DI by
// one row of B, ldb floats (R13 bytes).
#define G32STEP \
	VMOVUPS (DI), Y12 \
	VMOVUPS 32(DI), Y13 \
	VBROADCASTSS (SI), Y14 \
	VMULPS Y12, Y14, Y15 \
	VADDPS Y15, Y0, Y0 \
	VMULPS Y13, Y14, Y15 \
	VADDPS Y15, Y1, Y1 \
	VBROADCASTSS (SI)(R9*1), Y14 \
	VMULPS Y12, Y14, Y15 \
	VADDPS Y15, Y2, Y2 \
	VMULPS Y13, Y14, Y15 \
	VADDPS Y15, Y3, Y3 \
	VBROADCASTSS (SI)(R9*2), Y14 \
	VMULPS Y12, Y14, Y15 \
	VADDPS Y15, Y4, Y4 \
	VMULPS Y13, Y14, Y15 \
	VADDPS Y15, Y5, Y5 \
	VBROADCASTSS (SI)(R10*1), Y14 \
	VMULPS Y12, Y14, Y15 \
	VADDPS Y15, Y6, Y6 \
	VMULPS Y13, Y14, Y15 \
	VADDPS Y15, Y7, Y7 \
	VBROADCASTSS (SI)(R9*4), Y14 \
	VMULPS Y12, Y14, Y15 \
	VADDPS Y15, Y8, Y8 \
	VMULPS Y13, Y14, Y15 \
	VADDPS Y15, Y9, Y9 \
	VBROADCASTSS (SI)(R12*1), Y14 \
	VMULPS Y12, Y14, Y15 \
	VADDPS Y15, Y10, Y10 \
	VMULPS Y13, Y14, Y15 \
	VADDPS Y15, Y11, Y11 \
	ADDQ R11, SI \
	ADDQ R13, DI

// Converts the 16 float32 sums of one tile row (x: columns 0–7, y: 8–15) to
// float64, adds them to the 16 float64 of C at DX and advances DX by one row
// (R8 bytes). Clobbers Y12–Y15.
#define G32STORE(x, y, xx, yx) \
	VCVTPS2PD xx, Y12 \
	VEXTRACTF128 $1, x, X13 \
	VCVTPS2PD X13, Y13 \
	VCVTPS2PD yx, Y14 \
	VEXTRACTF128 $1, y, X15 \
	VCVTPS2PD X15, Y15 \
	VADDPD (DX), Y12, Y12 \
	VADDPD 32(DX), Y13, Y13 \
	VADDPD 64(DX), Y14, Y14 \
	VADDPD 96(DX), Y15, Y15 \
	VMOVUPD Y12, (DX) \
	VMOVUPD Y13, 32(DX) \
	VMOVUPD Y14, 64(DX) \
	VMOVUPD Y15, 96(DX) \
	ADDQ R8, DX

// func gemm32KernelAVX2(k int, a *float32, ia, sa int, b *float32, ldb int, c *float64, ldc int)
//
// For i < 6, j < 16: s = float32(0); for r < k: s = s + a[r*sa+i*ia]·b[r*ldb+j],
// the product and the sum each rounded to float32; then
// c[i*ldc+j] += float64(s). Requires k ≥ 1. B is a packed panel (ldb = 16)
// for X·Wᵀ and Rᵀ·X, or the rows of a block in place for ScoreGradRows.
TEXT ·gemm32KernelAVX2(SB), NOSPLIT, $0-64
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ ia+16(FP), R9
	SHLQ $2, R9
	MOVQ sa+24(FP), R11
	SHLQ $2, R11
	MOVQ b+32(FP), DI
	MOVQ ldb+40(FP), R13
	SHLQ $2, R13
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), R8
	SHLQ $3, R8
	LEAQ (R9)(R9*2), R10
	LEAQ (R9)(R9*4), R12

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
	G32STEP
	G32STEP
	G32STEP
	G32STEP
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	G32STEP
	DECQ CX
	JNZ  loop1

store:
	G32STORE(Y0, Y1, X0, X1)
	G32STORE(Y2, Y3, X2, X3)
	G32STORE(Y4, Y5, X4, X5)
	G32STORE(Y6, Y7, X6, X7)
	G32STORE(Y8, Y9, X8, X9)
	G32STORE(Y10, Y11, X10, X11)
	VZEROUPPER
	RET

// func gemm32ConvAVX2(dst, src *float32, n int, limit float32) (ss float64, bad bool)
//
// For i < n (n a multiple of 8): dst[i] = src[i]. Returns the sum of the
// squares of src in float64, in the order of gemmConvAVX2 (so the row norms
// of both precisions agree bit for bit), and whether some |src[i]| > limit
// or is NaN.
TEXT ·gemm32ConvAVX2(SB), NOSPLIT, $0-41
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS limit+24(FP), Y6
	MOVL $0x7fffffff, AX
	VMOVD AX, X7
	VPBROADCASTD X7, Y7
	VXORPS Y5, Y5, Y5
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $3, CX
	JZ   c32done

c32loop:
	VMOVUPS (SI), Y4
	VMOVUPS Y4, (DI)
	VANDPS Y7, Y4, Y8
	VCMPPS $6, Y6, Y8, Y8 // |x| not ≤ limit: true for NaN too
	VORPS Y8, Y5, Y5
	VCVTPS2PD X4, Y0
	VEXTRACTF128 $1, Y4, X4
	VCVTPS2PD X4, Y1
	VFMADD231PD Y0, Y0, Y2 // squares of float32 values are exact in float64
	VFMADD231PD Y1, Y1, Y3
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  c32loop

c32done:
	VADDPD Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VHADDPD X2, X2, X2
	VHADDPD X3, X3, X3
	VADDSD X3, X2, X2
	VMOVSD X2, ss+32(FP)
	VMOVMSKPS Y5, AX
	TESTL AX, AX
	SETNE bad+40(FP)
	VZEROUPPER
	RET

// func gemm32PackAVX2(dst, src *float32, rows, panels, ld, stride int, limit float32) (bad bool)
//
// For r < rows, p < panels, j < 16: dst[16r + p*stride + j] = src[r*ld + 16p + j];
// reports whether a value is NaN or larger than limit in magnitude.
// Prefetches the row 8 ahead.
TEXT ·gemm32PackAVX2(SB), NOSPLIT, $0-57
	MOVQ dst+0(FP), R12
	MOVQ src+8(FP), R13
	MOVQ rows+16(FP), BX
	MOVQ ld+32(FP), R9
	SHLQ $2, R9                // row stride of src, bytes
	MOVQ stride+40(FP), R10
	SHLQ $2, R10               // panel stride of dst, bytes
	VBROADCASTSS limit+48(FP), Y6
	MOVL $0x7fffffff, AX
	VMOVD AX, X7
	VPBROADCASTD X7, Y7
	VXORPS Y5, Y5, Y5
	LEAQ (R9*8), R11           // 8 rows ahead, bytes
	TESTQ BX, BX
	JZ   p32done

p32row:
	MOVQ R13, SI
	MOVQ R12, DI
	MOVQ panels+24(FP), CX
	TESTQ CX, CX
	JZ   p32next

p32panel:
	PREFETCHT0 (SI)(R11*1)
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VANDPS Y7, Y0, Y0
	VANDPS Y7, Y1, Y1
	VCMPPS $6, Y6, Y0, Y0
	VCMPPS $6, Y6, Y1, Y1
	VORPS Y0, Y5, Y5
	VORPS Y1, Y5, Y5
	ADDQ $64, SI
	ADDQ R10, DI
	DECQ CX
	JNZ  p32panel

p32next:
	ADDQ R9, R13
	ADDQ $64, R12
	DECQ BX
	JNZ  p32row

p32done:
	VMOVMSKPS Y5, AX
	TESTL AX, AX
	SETNE bad+56(FP)
	VZEROUPPER
	RET
