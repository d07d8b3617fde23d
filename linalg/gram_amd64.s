//go:build amd64 && !purego

#include "textflag.h"

// One step of the 6×8 float64 tile: B row r in Y12:Y13 (8 values), each of
// the 6 A values of row r broadcast in turn, 12 fused multiply-adds. ao is
// the byte offset of the A row in SI, bo the byte offset of the B row in DI.
#define GRAMSTEP(ao, bo) \
	VMOVUPD bo(DI), Y12 \
	VMOVUPD bo+32(DI), Y13 \
	VBROADCASTSD ao(SI), Y14 \
	VFMADD231PD Y12, Y14, Y0 \
	VFMADD231PD Y13, Y14, Y1 \
	VBROADCASTSD ao+8(SI), Y15 \
	VFMADD231PD Y12, Y15, Y2 \
	VFMADD231PD Y13, Y15, Y3 \
	VBROADCASTSD ao+16(SI), Y14 \
	VFMADD231PD Y12, Y14, Y4 \
	VFMADD231PD Y13, Y14, Y5 \
	VBROADCASTSD ao+24(SI), Y15 \
	VFMADD231PD Y12, Y15, Y6 \
	VFMADD231PD Y13, Y15, Y7 \
	VBROADCASTSD ao+32(SI), Y14 \
	VFMADD231PD Y12, Y14, Y8 \
	VFMADD231PD Y13, Y14, Y9 \
	VBROADCASTSD ao+40(SI), Y15 \
	VFMADD231PD Y12, Y15, Y10 \
	VFMADD231PD Y13, Y15, Y11

// Adds accumulators lo:hi to the 8 float64 of C at DX and advances DX by one
// row (R8 bytes).
#define GRAMSTORE(lo, hi) \
	VADDPD (DX), lo, lo \
	VADDPD 32(DX), hi, hi \
	VMOVUPD lo, (DX) \
	VMOVUPD hi, 32(DX) \
	ADDQ R8, DX

// func gramKernelAVX2(k int, a, b, c *float64, ldc int)
//
// For i < 6, j < 8: s = 0; for r < k: s = fma(a[6r+i], b[8r+j], s);
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
	PREFETCHT0 512(SI)
	PREFETCHT0 512(DI)
	GRAMSTEP(0, 0)
	GRAMSTEP(48, 64)
	PREFETCHT0 576(DI)
	GRAMSTEP(96, 128)
	GRAMSTEP(144, 192)
	ADDQ $192, SI
	ADDQ $256, DI
	DECQ BX
	JNZ  loop4

tail:
	ANDQ $3, CX
	JZ   store

loop1:
	GRAMSTEP(0, 0)
	ADDQ $48, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  loop1

store:
	GRAMSTORE(Y0, Y1)
	GRAMSTORE(Y2, Y3)
	GRAMSTORE(Y4, Y5)
	GRAMSTORE(Y6, Y7)
	GRAMSTORE(Y8, Y9)
	GRAMSTORE(Y10, Y11)
	VZEROUPPER
	RET
