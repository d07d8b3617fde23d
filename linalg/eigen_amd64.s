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

// func tridiagRowAVX2(a, v, w, vn, pp *float64, n int, vi, wi, vni float64) float64
//
// For j < n (a multiple of 8): x = a[j] − vi·w[j] − wi·v[j] (fused);
// a[j] = x; dot += x·vn[j]; pp[j] += x·vni.
TEXT ·tridiagRowAVX2(SB), NOSPLIT, $0-80
	MOVQ a+0(FP), DI
	MOVQ v+8(FP), SI
	MOVQ w+16(FP), BX
	MOVQ vn+24(FP), DX
	MOVQ pp+32(FP), R8
	MOVQ n+40(FP), CX
	VBROADCASTSD vi+48(FP), Y13
	VBROADCASTSD wi+56(FP), Y14
	VBROADCASTSD vni+64(FP), Y15
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	SHRQ $3, CX
	JZ   trddone

trdloop:
	VMOVUPD (DI), Y2
	VMOVUPD 32(DI), Y3
	VFNMADD231PD (BX), Y13, Y2
	VFNMADD231PD 32(BX), Y13, Y3
	VFNMADD231PD (SI), Y14, Y2
	VFNMADD231PD 32(SI), Y14, Y3
	VMOVUPD Y2, (DI)
	VMOVUPD Y3, 32(DI)
	VFMADD231PD (DX), Y2, Y0
	VFMADD231PD 32(DX), Y3, Y1
	VMOVUPD (R8), Y4
	VMOVUPD 32(R8), Y5
	VFMADD231PD Y2, Y15, Y4
	VFMADD231PD Y3, Y15, Y5
	VMOVUPD Y4, (R8)
	VMOVUPD Y5, 32(R8)
	ADDQ $64, DI
	ADDQ $64, SI
	ADDQ $64, BX
	ADDQ $64, DX
	ADDQ $64, R8
	DECQ CX
	JNZ  trdloop

trddone:
	VADDPD Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VHADDPD X0, X0, X0
	VMOVSD X0, ret+72(FP)
	VZEROUPPER
	RET
