//go:build amd64 && !purego

#include "textflag.h"

// func rowsPrefetchT0(p *float32, n int)
//
// PREFETCHT0 of every 64-byte line that holds one of the n ≥ 1 float32
// values at p: the first line is that of p, the last that of p+4n−1.
// Prefetches never fault, and change no value.
TEXT ·rowsPrefetchT0(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	LEAQ -1(SI)(CX*4), CX // the last byte
	ANDQ $-64, SI
pfloop:
	PREFETCHT0 (SI)
	ADDQ $64, SI
	CMPQ SI, CX
	JLS  pfloop
	RET

// The row copies of the fused step. They compute what gemmConvAVX2 and
// gemm32ConvAVX2 compute, bit for bit, but build the abs mask with VEX
// instructions only (all ones, shifted right by one): the legacy-SSE
// MOVL AX, X7 those use costs about 120 ns per call on this class of
// machine (measured on a KVM Zen 3 guest), against 5 ns for the whole call
// here on 8 values — the fused step makes about 10⁶ such calls per epoch.

// func rowsConv64AVX2(dst *float64, src *float32, n int, limit float32) (ss float64, bad bool)
//
// For i < n (n a multiple of 8): dst[i] = float64(src[i]). Returns the sum of
// squares in the order of gemmConvGo (two 4-lane accumulators, lanes
// src[8t+l] and src[8t+4+l], combined as ((p0+q0)+(p1+q1))+((p2+q2)+(p3+q3))),
// and whether some |src[i]| > limit or is NaN. Squares of float32 values are
// exact in float64, so fused and unfused sums agree.
TEXT ·rowsConv64AVX2(SB), NOSPLIT, $0-41
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS limit+24(FP), Y6
	VPCMPEQD Y7, Y7, Y7
	VPSRLD $1, Y7, Y7 // 0x7fffffff: the abs mask
	VXORPS Y5, Y5, Y5
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $3, CX
	JZ   c64done

c64loop:
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
	JNZ  c64loop

c64done:
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

// func rowsConv32AVX2(dst, src *float32, n int, limit float32) (ss float64, bad bool)
//
// For i < n (n a multiple of 8): dst[i] = src[i]. Returns the sum of the
// squares of src in float64 in the order of rowsConv64AVX2, and whether some
// |src[i]| > limit or is NaN.
TEXT ·rowsConv32AVX2(SB), NOSPLIT, $0-41
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS limit+24(FP), Y6
	VPCMPEQD Y7, Y7, Y7
	VPSRLD $1, Y7, Y7
	VXORPS Y5, Y5, Y5
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	SHRQ $3, CX
	JZ   c32done

c32loop:
	VMOVUPS (SI), Y4
	VMOVUPS Y4, (DI)
	VANDPS Y7, Y4, Y8
	VCMPPS $6, Y6, Y8, Y8
	VORPS Y8, Y5, Y5
	VCVTPS2PD X4, Y0
	VEXTRACTF128 $1, Y4, X4
	VCVTPS2PD X4, Y1
	VFMADD231PD Y0, Y0, Y2
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

// One step r of rowsKernel32AVX2: G32STEP of gemm32_amd64.s with the B row
// at DI advanced by ldb floats (R13 bytes) instead of 16.
#define R32STEP \
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
#define R32STORE(x, y, xx, yx) \
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

// func rowsKernel32AVX2(k int, a *float32, ia, sa int, b *float32, ldb int, c *float64, ldc int)
//
// gemm32KernelAVX2 with B rows ldb floats apart: for i < 6, j < 16:
// s = float32(0); for r < k: s = s + a[r*sa+i*ia]·b[r*ldb+j], the product
// and the sum each rounded to float32; then c[i*ldc+j] += float64(s).
// Requires k ≥ 1.
TEXT ·rowsKernel32AVX2(SB), NOSPLIT, $0-64
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
	JZ   r32tail

r32loop4:
	R32STEP
	R32STEP
	R32STEP
	R32STEP
	DECQ BX
	JNZ  r32loop4

r32tail:
	ANDQ $3, CX
	JZ   r32store

r32loop1:
	R32STEP
	DECQ CX
	JNZ  r32loop1

r32store:
	R32STORE(Y0, Y1, X0, X1)
	R32STORE(Y2, Y3, X2, X3)
	R32STORE(Y4, Y5, X4, X5)
	R32STORE(Y6, Y7, X6, X7)
	R32STORE(Y8, Y9, X8, X9)
	R32STORE(Y10, Y11, X10, X11)
	VZEROUPPER
	RET
