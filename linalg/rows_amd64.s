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
