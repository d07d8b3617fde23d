//go:build amd64 && !purego

#include "textflag.h"

// One step r of the 4×12 float64 tile: row r of the packed B panel (12
// values, 96 bytes) in Y12:Y14; A values a[r*sa + i*ia], i < 4, broadcast in
// turn from (SI), (SI)+ia, (SI)+2ia, (SI)+3ia into Y15 (R9 = ia bytes,
// R10 = 3·ia bytes); 12 fused multiply-adds. SI advances by sa bytes (R11),
// DI by one panel row.
#define GEMMSTEP \
	VMOVUPD (DI), Y12 \
	VMOVUPD 32(DI), Y13 \
	VMOVUPD 64(DI), Y14 \
	VBROADCASTSD (SI), Y15 \
	VFMADD231PD Y12, Y15, Y0 \
	VFMADD231PD Y13, Y15, Y1 \
	VFMADD231PD Y14, Y15, Y2 \
	VBROADCASTSD (SI)(R9*1), Y15 \
	VFMADD231PD Y12, Y15, Y3 \
	VFMADD231PD Y13, Y15, Y4 \
	VFMADD231PD Y14, Y15, Y5 \
	VBROADCASTSD (SI)(R9*2), Y15 \
	VFMADD231PD Y12, Y15, Y6 \
	VFMADD231PD Y13, Y15, Y7 \
	VFMADD231PD Y14, Y15, Y8 \
	VBROADCASTSD (SI)(R10*1), Y15 \
	VFMADD231PD Y12, Y15, Y9 \
	VFMADD231PD Y13, Y15, Y10 \
	VFMADD231PD Y14, Y15, Y11 \
	ADDQ R11, SI \
	ADDQ $96, DI

// Adds accumulators x, y, z to the 12 float64 of C at DX and advances DX by
// one row (R8 bytes).
#define GEMMSTORE(x, y, z) \
	VADDPD (DX), x, x \
	VADDPD 32(DX), y, y \
	VADDPD 64(DX), z, z \
	VMOVUPD x, (DX) \
	VMOVUPD y, 32(DX) \
	VMOVUPD z, 64(DX) \
	ADDQ R8, DX

// func gemmKernelAVX2(k int, a *float64, ia, sa int, b, c *float64, ldc int)
//
// For i < 4, j < 12: s = 0; for r < k: s = fma(a[r*sa+i*ia], b[12r+j], s);
// then c[i*ldc+j] += s. Requires k ≥ 1.
TEXT ·gemmKernelAVX2(SB), NOSPLIT, $0-56
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ ia+16(FP), R9
	SHLQ $3, R9
	MOVQ sa+24(FP), R11
	SHLQ $3, R11
	MOVQ b+32(FP), DI
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R8
	SHLQ $3, R8
	LEAQ (R9)(R9*2), R10

	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   tail

loop4:
	GEMMSTEP
	GEMMSTEP
	GEMMSTEP
	GEMMSTEP
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	GEMMSTEP
	DECQ CX
	JNZ  loop1

store:
	GEMMSTORE(Y0, Y1, Y2)
	GEMMSTORE(Y3, Y4, Y5)
	GEMMSTORE(Y6, Y7, Y8)
	GEMMSTORE(Y9, Y10, Y11)
	VZEROUPPER
	RET

// func gemmConvAVX2(dst *float64, src *float32, n int, limit float32) (ss float64, bad bool)
//
// For i < n (n a multiple of 8): dst[i] = float64(src[i]). Returns the sum of
// squares in the order of gemmConvGo (two 4-lane accumulators, lanes
// src[8t+l] and src[8t+4+l], combined as ((p0+q0)+(p1+q1))+((p2+q2)+(p3+q3))),
// and whether some |src[i]| > limit or is NaN. Squares of float32 values are
// exact in float64, so fused and unfused sums agree.
TEXT ·gemmConvAVX2(SB), NOSPLIT, $0-41
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
	JZ   convdone

convloop:
	VMOVUPS (SI), Y4
	VANDPS Y7, Y4, Y8
	VCMPPS $6, Y6, Y8, Y8 // |x| not ≤ limit: true for NaN too
	VORPS Y8, Y5, Y5
	VCVTPS2PD X4, Y0
	VEXTRACTF128 $1, Y4, X4
	VCVTPS2PD X4, Y1
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VFMADD231PD Y0, Y0, Y2
	VFMADD231PD Y1, Y1, Y3
	ADDQ $32, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  convloop

convdone:
	VADDPD Y3, Y2, Y2          // lanes p_l + q_l
	VEXTRACTF128 $1, Y2, X3    // (p2+q2, p3+q3)
	VHADDPD X2, X2, X2         // (p0+q0)+(p1+q1)
	VHADDPD X3, X3, X3         // (p2+q2)+(p3+q3)
	VADDSD X3, X2, X2
	VMOVSD X2, ss+32(FP)
	VMOVMSKPS Y5, AX
	TESTL AX, AX
	SETNE bad+40(FP)
	VZEROUPPER
	RET

// Converts the 4 float32 at off(SI) to float64 at doff(DI), or-ing into X5
// whether one is NaN or above X6 in magnitude (X7: abs mask).
#define PACK4(off, doff) \
	VMOVUPS off(SI), X4 \
	VANDPS X7, X4, X8 \
	VCMPPS $6, X6, X8, X8 \
	VORPS X8, X5, X5 \
	VCVTPS2PD X4, Y0 \
	VMOVUPD Y0, doff(DI)

// func gemmPackAVX2(dst *float64, src *float32, rows, panels, ld, stride int, limit float32) (bad bool)
//
// For r < rows, p < panels, j < 12:
// dst[12r + p*stride + j] = float64(src[r*ld + 12p + j]); reports whether a
// value is NaN or larger than limit in magnitude. Prefetches the row 8 ahead.
TEXT ·gemmPackAVX2(SB), NOSPLIT, $0-57
	MOVQ dst+0(FP), R12
	MOVQ src+8(FP), R13
	MOVQ rows+16(FP), BX
	MOVQ ld+32(FP), R9
	SHLQ $2, R9                // row stride of src, bytes
	MOVQ stride+40(FP), R10
	SHLQ $3, R10               // panel stride of dst, bytes
	VBROADCASTSS limit+48(FP), X6
	MOVL $0x7fffffff, AX
	VMOVD AX, X7
	VPBROADCASTD X7, X7
	VXORPS X5, X5, X5
	LEAQ (R9*8), R11           // 8 rows ahead, bytes
	TESTQ BX, BX
	JZ   packdone

rowloop:
	MOVQ R13, SI
	MOVQ R12, DI
	MOVQ panels+24(FP), CX
	TESTQ CX, CX
	JZ   rownext

panelloop:
	PREFETCHT0 (SI)(R11*1)
	PACK4(0, 0)
	PACK4(16, 32)
	PACK4(32, 64)
	ADDQ $48, SI
	ADDQ R10, DI
	DECQ CX
	JNZ  panelloop

rownext:
	ADDQ R9, R13
	ADDQ $96, R12
	DECQ BX
	JNZ  rowloop

packdone:
	VMOVMSKPS X5, AX
	TESTL AX, AX
	SETNE bad+56(FP)
	VZEROUPPER
	RET
