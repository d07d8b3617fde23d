//go:build amd64 && !purego

#include "textflag.h"

// One rotation of one panel: x = column i at mem; y (the carry, column i+1)
// in Y; c in Y3, s in Y4. Stores s·x + c·y to column i+1 (next, 32 bytes on)
// and leaves c·x − s·y in Y.
#define ROT(mem, next, Y, X, U, V) \
	VMOVUPD mem, X \
	VMULPD Y3, Y, V \
	VMULPD Y3, X, U \
	VFMADD231PD X, Y4, V \
	VFNMADD213PD U, Y4, Y \
	VMOVUPD V, next

// func rotPanels3AVX2(z *float64, stride, top, n int, c, s *float64)
TEXT ·rotPanels3AVX2(SB), NOSPLIT, $0-48
	MOVQ z+0(FP), DI
	MOVQ stride+8(FP), R8
	SHLQ $3, R8
	MOVQ top+16(FP), AX
	MOVQ n+24(FP), CX
	MOVQ c+32(FP), SI
	MOVQ s+40(FP), DX
	SHLQ $5, AX
	ADDQ AX, DI
	VMOVUPD (DI), Y0
	VMOVUPD (DI)(R8*1), Y1
	VMOVUPD (DI)(R8*2), Y2

rotloop:
	SUBQ $32, DI
	VBROADCASTSD (SI), Y3
	VBROADCASTSD (DX), Y4
	ROT((DI), 32(DI), Y0, Y5, Y6, Y7)
	ROT((DI)(R8*1), 32(DI)(R8*1), Y1, Y8, Y9, Y10)
	ROT((DI)(R8*2), 32(DI)(R8*2), Y2, Y11, Y12, Y13)
	ADDQ $8, SI
	ADDQ $8, DX
	DECQ CX
	JNZ  rotloop

	VMOVUPD Y0, (DI)
	VMOVUPD Y1, (DI)(R8*1)
	VMOVUPD Y2, (DI)(R8*2)
	VZEROUPPER
	RET

// func tridiagRow2AVX2(a0, a1, v, pp *float64, n int, v0, v1 float64) (d0, d1 float64)
//
// For j < n (a multiple of 8): d0 += a0[j]·v[j]; d1 += a1[j]·v[j];
// pp[j] = fma(a1[j], v1, fma(a0[j], v0, pp[j])).
TEXT ·tridiagRow2AVX2(SB), NOSPLIT, $0-72
	MOVQ a0+0(FP), DI
	MOVQ a1+8(FP), SI
	MOVQ v+16(FP), BX
	MOVQ pp+24(FP), R8
	MOVQ n+32(FP), CX
	VBROADCASTSD v0+40(FP), Y14
	VBROADCASTSD v1+48(FP), Y15
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $3, CX
	JZ   r2done

r2loop:
	VMOVUPD (DI), Y4
	VMOVUPD 32(DI), Y5
	VMOVUPD (SI), Y6
	VMOVUPD 32(SI), Y7
	VMOVUPD (BX), Y8
	VMOVUPD 32(BX), Y9
	VMOVUPD (R8), Y10
	VMOVUPD 32(R8), Y11
	VFMADD231PD Y4, Y8, Y0
	VFMADD231PD Y5, Y9, Y1
	VFMADD231PD Y6, Y8, Y2
	VFMADD231PD Y7, Y9, Y3
	VFMADD231PD Y4, Y14, Y10
	VFMADD231PD Y5, Y14, Y11
	VFMADD231PD Y6, Y15, Y10
	VFMADD231PD Y7, Y15, Y11
	VMOVUPD Y10, (R8)
	VMOVUPD Y11, 32(R8)
	ADDQ $64, DI
	ADDQ $64, SI
	ADDQ $64, BX
	ADDQ $64, R8
	DECQ CX
	JNZ  r2loop

r2done:
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VHADDPD X0, X0, X0
	VMOVSD X0, d0+56(FP)
	VADDPD Y3, Y2, Y2
	VEXTRACTF128 $1, Y2, X3
	VADDPD X3, X2, X2
	VHADDPD X2, X2, X2
	VMOVSD X2, d1+64(FP)
	VZEROUPPER
	RET
