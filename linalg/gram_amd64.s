//go:build amd64 && !purego

#include "textflag.h"

// One step of the 4×12 float64 tile: row r of the B panel in Y12:Y14 (12
// values), each of the 4 A values broadcast in turn into Y15, 12 fused
// multiply-adds. off is the byte offset of row r from SI (A) and DI (B), which
// share the panel stride of 96 bytes.
#define GRAMSTEP(off) \
	VMOVUPD off(DI), Y12 \
	VMOVUPD off+32(DI), Y13 \
	VMOVUPD off+64(DI), Y14 \
	VBROADCASTSD off(SI), Y15 \
	VFMADD231PD Y12, Y15, Y0 \
	VFMADD231PD Y13, Y15, Y1 \
	VFMADD231PD Y14, Y15, Y2 \
	VBROADCASTSD off+8(SI), Y15 \
	VFMADD231PD Y12, Y15, Y3 \
	VFMADD231PD Y13, Y15, Y4 \
	VFMADD231PD Y14, Y15, Y5 \
	VBROADCASTSD off+16(SI), Y15 \
	VFMADD231PD Y12, Y15, Y6 \
	VFMADD231PD Y13, Y15, Y7 \
	VFMADD231PD Y14, Y15, Y8 \
	VBROADCASTSD off+24(SI), Y15 \
	VFMADD231PD Y12, Y15, Y9 \
	VFMADD231PD Y13, Y15, Y10 \
	VFMADD231PD Y14, Y15, Y11

// Adds accumulators x, y, z to the 12 float64 of C at DX and advances DX by
// one row (R8 bytes).
#define GRAMSTORE(x, y, z) \
	VADDPD (DX), x, x \
	VADDPD 32(DX), y, y \
	VADDPD 64(DX), z, z \
	VMOVUPD x, (DX) \
	VMOVUPD y, 32(DX) \
	VMOVUPD z, 64(DX) \
	ADDQ R8, DX

// func gramKernelAVX2(k int, a, b, c *float64, ldc int)
//
// For i < 4, j < 12: s = 0; for r < k: s = fma(a[12r+i], b[12r+j], s);
// then c[i*ldc+j] += s. Requires k ≥ 1.
TEXT ·gramKernelAVX2(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $3, R8

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
	PREFETCHT0 768(DI)
	GRAMSTEP(0)
	PREFETCHT0 832(DI)
	GRAMSTEP(96)
	PREFETCHT0 896(DI)
	GRAMSTEP(192)
	PREFETCHT0 960(DI)
	GRAMSTEP(288)
	ADDQ $384, SI
	ADDQ $384, DI
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	GRAMSTEP(0)
	ADDQ $96, SI
	ADDQ $96, DI
	DECQ CX
	JNZ  loop1

store:
	GRAMSTORE(Y0, Y1, Y2)
	GRAMSTORE(Y3, Y4, Y5)
	GRAMSTORE(Y6, Y7, Y8)
	GRAMSTORE(Y9, Y10, Y11)
	VZEROUPPER
	RET

// func gramPackRowAVX2(dst *float64, src *float32, panels, stride int)
//
// For p < panels: dst[p*stride+j] = float64(src[12p+j]), j < 12.
TEXT ·gramPackRowAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ panels+16(FP), CX
	MOVQ stride+24(FP), R8
	SHLQ $3, R8
	TESTQ CX, CX
	JZ   packdone

packloop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD 16(SI), Y1
	VCVTPS2PD 32(SI), Y2
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	ADDQ $48, SI
	ADDQ R8, DI
	DECQ CX
	JNZ  packloop

packdone:
	VZEROUPPER
	RET

// func gramBadAVX2(src *float32, n int, limit float32) bool
//
// Reports whether some |src[i]| > limit or is NaN, i < n, n a multiple of 8.
TEXT ·gramBadAVX2(SB), NOSPLIT, $0-25
	MOVQ src+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS limit+16(FP), Y1
	MOVL $0x7fffffff, AX
	VMOVD AX, X2
	VPBROADCASTD X2, Y2
	VXORPS Y3, Y3, Y3
	SHRQ $3, CX
	JZ   baddone

badloop:
	VANDPS (SI), Y2, Y0
	VCMPPS $6, Y1, Y0, Y0 // |x| not ≤ limit: true for NaN too
	VORPS Y0, Y3, Y3
	ADDQ $32, SI
	DECQ CX
	JNZ  badloop

baddone:
	VMOVMSKPS Y3, AX
	TESTL AX, AX
	SETNE ret+24(FP)
	VZEROUPPER
	RET
