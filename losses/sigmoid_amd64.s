//go:build amd64 && !purego

#include "textflag.h"

// sigmoidRowAVX2 runs sigmoidRowGo's algorithm (sigmoid_vec.go) four
// entries at a time; every operation below has its twin there, in the same
// order, so the results are bit-identical.

// Offsets of the rows of sigtab<> (32 bytes: one value in four lanes).
#define T_SIGN 0
#define T_ABS 32
#define T_LOG2E 64
#define T_SHIFT 96
#define T_NLN2HI 128
#define T_NLN2LO 160
#define T_BIAS 192
#define T_TWO 224
#define T_FOUR 256
#define T_MAX 288
#define T_LANES 320
#define T_ONE 352
#define T_EXP 384
#define T_ATANH 832
#define T_TAIL 1344

// One vector of four scores. In: Y0 = v; Y7 = the entries' indices, Y8 = y,
// Y9 = α, Y10 = 1, Y15 = sign bits, R8 = &sigtab. Out: Y12 = residuals,
// Y11 = curvatures, Y4 = loss terms; Y7 advanced by 4. Clobbers Y1–Y5, Y13,
// Y14.
#define SIGBODY \
	VORPD Y15, Y0, Y1 \
	VMOVUPD T_SHIFT(R8), Y2 \
	VFMADD231PD T_LOG2E(R8), Y1, Y2 \
	VSUBPD T_SHIFT(R8), Y2, Y3 \
	VFMADD231PD T_NLN2HI(R8), Y3, Y1 \
	VFMADD231PD T_NLN2LO(R8), Y3, Y1 \
	VMOVUPD T_EXP(R8), Y3 \
	VFMADD213PD T_EXP+32(R8), Y1, Y3 \
	VFMADD213PD T_EXP+64(R8), Y1, Y3 \
	VFMADD213PD T_EXP+96(R8), Y1, Y3 \
	VFMADD213PD T_EXP+128(R8), Y1, Y3 \
	VFMADD213PD T_EXP+160(R8), Y1, Y3 \
	VFMADD213PD T_EXP+192(R8), Y1, Y3 \
	VFMADD213PD T_EXP+224(R8), Y1, Y3 \
	VFMADD213PD T_EXP+256(R8), Y1, Y3 \
	VFMADD213PD T_EXP+288(R8), Y1, Y3 \
	VFMADD213PD T_EXP+320(R8), Y1, Y3 \
	VFMADD213PD T_EXP+352(R8), Y1, Y3 \
	VFMADD213PD T_EXP+384(R8), Y1, Y3 \
	VFMADD213PD T_EXP+416(R8), Y1, Y3 \
	VPADDQ T_BIAS(R8), Y2, Y2 \
	VPSLLQ $52, Y2, Y2 \
	VMULPD Y2, Y3, Y3 \
	VADDPD Y10, Y3, Y1 \
	VDIVPD Y1, Y10, Y1 \
	VMULPD Y1, Y3, Y2 \
	VBLENDVPD Y0, Y2, Y1, Y4 \
	VBLENDVPD Y0, Y1, Y2, Y5 \
	VCMPPD $0, Y8, Y7, Y1 \
	VBLENDVPD Y1, Y10, Y9, Y2 \
	VMULPD Y4, Y2, Y4 \
	VMULPD Y5, Y4, Y11 \
	VXORPD Y15, Y5, Y5 \
	VBLENDVPD Y1, Y5, Y4, Y12 \
	VXORPD Y15, Y0, Y4 \
	VBLENDVPD Y1, Y4, Y0, Y4 \
	VXORPD Y5, Y5, Y5 \
	VMAXPD Y5, Y4, Y4 \
	VADDPD T_TWO(R8), Y3, Y5 \
	VDIVPD Y5, Y3, Y5 \
	VMULPD Y5, Y5, Y13 \
	VMOVUPD T_ATANH(R8), Y14 \
	VFMADD213PD T_ATANH+32(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+64(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+96(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+128(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+160(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+192(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+224(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+256(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+288(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+320(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+352(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+384(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+416(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+448(R8), Y13, Y14 \
	VFMADD213PD T_ATANH+480(R8), Y13, Y14 \
	VADDPD Y5, Y5, Y5 \
	VMULPD Y14, Y5, Y5 \
	VADDPD Y5, Y4, Y4 \
	VMULPD Y4, Y2, Y4 \
	VADDPD T_FOUR(R8), Y7, Y7

// Line by line, SIGBODY computes (sigmoidRowGo's names):
//   x = −|v| (sign bit set); t = fma(x, log₂e, shifter); k = t − shifter;
//   r = fma(k, −ln2hi, x); r = fma(k, −ln2lo, r); p = Horner(1/n!, r);
//   2ᵏ = (bits(t) + 1023) << 52; e = p·2ᵏ; big = 1/(1+e); small = e·big;
//   sp, sn by the sign of v; lab = (index == y); w = lab ? 1 : α;
//   wsp = w·sp; curvature = wsp·sn; residual = lab ? −sn : wsp;
//   mv = lab ? −v : v; m = max(mv, +0); u = e/(2+e); z = u·u;
//   q = Horner(1/(2j+1), z); l1 = (u+u)·q; term = w·(m + l1).

// func sigmoidRowAVX2(s, curv *float64, n int, y, alpha float64) (loss float64, ok bool)
TEXT ·sigmoidRowAVX2(SB), NOSPLIT, $0-49
	MOVQ s+0(FP), SI
	MOVQ curv+8(FP), DI
	MOVQ n+16(FP), CX
	LEAQ sigtab<>(SB), R8

	// Pass 1: refuse the row (ok = false) if some |v| > sigVecMaxScore or
	// is NaN (compare "not less or equal", unordered true).
	VXORPD Y2, Y2, Y2
	MOVQ SI, R9
	MOVQ CX, R10

check4:
	CMPQ R10, $4
	JLT checktail
	VMOVUPD (R9), Y0
	VANDPD T_ABS(R8), Y0, Y0
	VCMPPD $0x16, T_MAX(R8), Y0, Y1
	VORPD Y1, Y2, Y2
	ADDQ $32, R9
	SUBQ $4, R10
	JMP check4

checktail:
	TESTQ R10, R10
	JEQ checked
	SHLQ $5, R10
	VMOVUPD T_TAIL(R8)(R10*1), Y3
	VMASKMOVPD (R9), Y3, Y0
	VANDPD T_ABS(R8), Y0, Y0
	VCMPPD $0x16, T_MAX(R8), Y0, Y1
	VORPD Y1, Y2, Y2

checked:
	VMOVMSKPD Y2, AX
	TESTL AX, AX
	JNE fail

	// Pass 2.
	VBROADCASTSD y+24(FP), Y8
	VBROADCASTSD alpha+32(FP), Y9
	VMOVUPD T_ONE(R8), Y10
	VMOVUPD T_SIGN(R8), Y15
	VMOVUPD T_LANES(R8), Y7
	VXORPD Y6, Y6, Y6

loop4:
	CMPQ CX, $4
	JLT tail
	VMOVUPD (SI), Y0
	SIGBODY
	VMOVUPD Y12, (SI)
	VMOVUPD Y11, (DI)
	VADDPD Y4, Y6, Y6
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $4, CX
	JMP loop4

tail:
	TESTQ CX, CX
	JEQ done
	SHLQ $5, CX
	VMOVUPD T_TAIL(R8)(CX*1), Y1
	VMASKMOVPD (SI), Y1, Y0
	SIGBODY
	VMOVUPD T_TAIL(R8)(CX*1), Y1
	VMASKMOVPD Y12, Y1, (SI)
	VMASKMOVPD Y11, Y1, (DI)
	VANDPD Y1, Y4, Y4
	VADDPD Y4, Y6, Y6

done:
	// (l₀ + l₂) + (l₁ + l₃)
	VEXTRACTF128 $1, Y6, X0
	VADDPD X0, X6, X0
	VUNPCKHPD X0, X0, X1
	VADDSD X1, X0, X0
	VMOVSD X0, loss+40(FP)
	VZEROUPPER
	MOVB $1, ok+48(FP)
	RET

fail:
	VZEROUPPER
	MOVQ $0, loss+40(FP)
	MOVB $0, ok+48(FP)
	RET

// sigtab<>: the constants of SIGBODY, each in four lanes, and the masks of
// a last vector with 0–3 entries (generated; the values are sigmoid_vec.go's
// constants, rounded to nearest).
// 0: sign bit
DATA sigtab<>+0(SB)/8, $0x8000000000000000
DATA sigtab<>+8(SB)/8, $0x8000000000000000
DATA sigtab<>+16(SB)/8, $0x8000000000000000
DATA sigtab<>+24(SB)/8, $0x8000000000000000
// 32: abs mask
DATA sigtab<>+32(SB)/8, $0x7fffffffffffffff
DATA sigtab<>+40(SB)/8, $0x7fffffffffffffff
DATA sigtab<>+48(SB)/8, $0x7fffffffffffffff
DATA sigtab<>+56(SB)/8, $0x7fffffffffffffff
// 64: log2 e
DATA sigtab<>+64(SB)/8, $0x3ff71547652b82fe
DATA sigtab<>+72(SB)/8, $0x3ff71547652b82fe
DATA sigtab<>+80(SB)/8, $0x3ff71547652b82fe
DATA sigtab<>+88(SB)/8, $0x3ff71547652b82fe
// 96: shifter 1.5*2^52
DATA sigtab<>+96(SB)/8, $0x4338000000000000
DATA sigtab<>+104(SB)/8, $0x4338000000000000
DATA sigtab<>+112(SB)/8, $0x4338000000000000
DATA sigtab<>+120(SB)/8, $0x4338000000000000
// 128: -ln2 hi
DATA sigtab<>+128(SB)/8, $0xbfe62e42fee00000
DATA sigtab<>+136(SB)/8, $0xbfe62e42fee00000
DATA sigtab<>+144(SB)/8, $0xbfe62e42fee00000
DATA sigtab<>+152(SB)/8, $0xbfe62e42fee00000
// 160: -ln2 lo
DATA sigtab<>+160(SB)/8, $0xbdea39ef35793c76
DATA sigtab<>+168(SB)/8, $0xbdea39ef35793c76
DATA sigtab<>+176(SB)/8, $0xbdea39ef35793c76
DATA sigtab<>+184(SB)/8, $0xbdea39ef35793c76
// 192: exponent bias (int64)
DATA sigtab<>+192(SB)/8, $0x00000000000003ff
DATA sigtab<>+200(SB)/8, $0x00000000000003ff
DATA sigtab<>+208(SB)/8, $0x00000000000003ff
DATA sigtab<>+216(SB)/8, $0x00000000000003ff
// 224: 2
DATA sigtab<>+224(SB)/8, $0x4000000000000000
DATA sigtab<>+232(SB)/8, $0x4000000000000000
DATA sigtab<>+240(SB)/8, $0x4000000000000000
DATA sigtab<>+248(SB)/8, $0x4000000000000000
// 256: 4
DATA sigtab<>+256(SB)/8, $0x4010000000000000
DATA sigtab<>+264(SB)/8, $0x4010000000000000
DATA sigtab<>+272(SB)/8, $0x4010000000000000
DATA sigtab<>+280(SB)/8, $0x4010000000000000
// 288: sigVecMaxScore
DATA sigtab<>+288(SB)/8, $0x4085e00000000000
DATA sigtab<>+296(SB)/8, $0x4085e00000000000
DATA sigtab<>+304(SB)/8, $0x4085e00000000000
DATA sigtab<>+312(SB)/8, $0x4085e00000000000
// 320: lane indices
DATA sigtab<>+320(SB)/8, $0x0000000000000000
DATA sigtab<>+328(SB)/8, $0x3ff0000000000000
DATA sigtab<>+336(SB)/8, $0x4000000000000000
DATA sigtab<>+344(SB)/8, $0x4008000000000000
// 352: 1
DATA sigtab<>+352(SB)/8, $0x3ff0000000000000
DATA sigtab<>+360(SB)/8, $0x3ff0000000000000
DATA sigtab<>+368(SB)/8, $0x3ff0000000000000
DATA sigtab<>+376(SB)/8, $0x3ff0000000000000
// 384: 1/13!
DATA sigtab<>+384(SB)/8, $0x3de6124613a86d09
DATA sigtab<>+392(SB)/8, $0x3de6124613a86d09
DATA sigtab<>+400(SB)/8, $0x3de6124613a86d09
DATA sigtab<>+408(SB)/8, $0x3de6124613a86d09
// 416: 1/12!
DATA sigtab<>+416(SB)/8, $0x3e21eed8eff8d898
DATA sigtab<>+424(SB)/8, $0x3e21eed8eff8d898
DATA sigtab<>+432(SB)/8, $0x3e21eed8eff8d898
DATA sigtab<>+440(SB)/8, $0x3e21eed8eff8d898
// 448: 1/11!
DATA sigtab<>+448(SB)/8, $0x3e5ae64567f544e4
DATA sigtab<>+456(SB)/8, $0x3e5ae64567f544e4
DATA sigtab<>+464(SB)/8, $0x3e5ae64567f544e4
DATA sigtab<>+472(SB)/8, $0x3e5ae64567f544e4
// 480: 1/10!
DATA sigtab<>+480(SB)/8, $0x3e927e4fb7789f5c
DATA sigtab<>+488(SB)/8, $0x3e927e4fb7789f5c
DATA sigtab<>+496(SB)/8, $0x3e927e4fb7789f5c
DATA sigtab<>+504(SB)/8, $0x3e927e4fb7789f5c
// 512: 1/9!
DATA sigtab<>+512(SB)/8, $0x3ec71de3a556c734
DATA sigtab<>+520(SB)/8, $0x3ec71de3a556c734
DATA sigtab<>+528(SB)/8, $0x3ec71de3a556c734
DATA sigtab<>+536(SB)/8, $0x3ec71de3a556c734
// 544: 1/8!
DATA sigtab<>+544(SB)/8, $0x3efa01a01a01a01a
DATA sigtab<>+552(SB)/8, $0x3efa01a01a01a01a
DATA sigtab<>+560(SB)/8, $0x3efa01a01a01a01a
DATA sigtab<>+568(SB)/8, $0x3efa01a01a01a01a
// 576: 1/7!
DATA sigtab<>+576(SB)/8, $0x3f2a01a01a01a01a
DATA sigtab<>+584(SB)/8, $0x3f2a01a01a01a01a
DATA sigtab<>+592(SB)/8, $0x3f2a01a01a01a01a
DATA sigtab<>+600(SB)/8, $0x3f2a01a01a01a01a
// 608: 1/6!
DATA sigtab<>+608(SB)/8, $0x3f56c16c16c16c17
DATA sigtab<>+616(SB)/8, $0x3f56c16c16c16c17
DATA sigtab<>+624(SB)/8, $0x3f56c16c16c16c17
DATA sigtab<>+632(SB)/8, $0x3f56c16c16c16c17
// 640: 1/5!
DATA sigtab<>+640(SB)/8, $0x3f81111111111111
DATA sigtab<>+648(SB)/8, $0x3f81111111111111
DATA sigtab<>+656(SB)/8, $0x3f81111111111111
DATA sigtab<>+664(SB)/8, $0x3f81111111111111
// 672: 1/4!
DATA sigtab<>+672(SB)/8, $0x3fa5555555555555
DATA sigtab<>+680(SB)/8, $0x3fa5555555555555
DATA sigtab<>+688(SB)/8, $0x3fa5555555555555
DATA sigtab<>+696(SB)/8, $0x3fa5555555555555
// 704: 1/3!
DATA sigtab<>+704(SB)/8, $0x3fc5555555555555
DATA sigtab<>+712(SB)/8, $0x3fc5555555555555
DATA sigtab<>+720(SB)/8, $0x3fc5555555555555
DATA sigtab<>+728(SB)/8, $0x3fc5555555555555
// 736: 1/2!
DATA sigtab<>+736(SB)/8, $0x3fe0000000000000
DATA sigtab<>+744(SB)/8, $0x3fe0000000000000
DATA sigtab<>+752(SB)/8, $0x3fe0000000000000
DATA sigtab<>+760(SB)/8, $0x3fe0000000000000
// 768: 1/1!
DATA sigtab<>+768(SB)/8, $0x3ff0000000000000
DATA sigtab<>+776(SB)/8, $0x3ff0000000000000
DATA sigtab<>+784(SB)/8, $0x3ff0000000000000
DATA sigtab<>+792(SB)/8, $0x3ff0000000000000
// 800: 1/0!
DATA sigtab<>+800(SB)/8, $0x3ff0000000000000
DATA sigtab<>+808(SB)/8, $0x3ff0000000000000
DATA sigtab<>+816(SB)/8, $0x3ff0000000000000
DATA sigtab<>+824(SB)/8, $0x3ff0000000000000
// 832: 1/31
DATA sigtab<>+832(SB)/8, $0x3fa0842108421084
DATA sigtab<>+840(SB)/8, $0x3fa0842108421084
DATA sigtab<>+848(SB)/8, $0x3fa0842108421084
DATA sigtab<>+856(SB)/8, $0x3fa0842108421084
// 864: 1/29
DATA sigtab<>+864(SB)/8, $0x3fa1a7b9611a7b96
DATA sigtab<>+872(SB)/8, $0x3fa1a7b9611a7b96
DATA sigtab<>+880(SB)/8, $0x3fa1a7b9611a7b96
DATA sigtab<>+888(SB)/8, $0x3fa1a7b9611a7b96
// 896: 1/27
DATA sigtab<>+896(SB)/8, $0x3fa2f684bda12f68
DATA sigtab<>+904(SB)/8, $0x3fa2f684bda12f68
DATA sigtab<>+912(SB)/8, $0x3fa2f684bda12f68
DATA sigtab<>+920(SB)/8, $0x3fa2f684bda12f68
// 928: 1/25
DATA sigtab<>+928(SB)/8, $0x3fa47ae147ae147b
DATA sigtab<>+936(SB)/8, $0x3fa47ae147ae147b
DATA sigtab<>+944(SB)/8, $0x3fa47ae147ae147b
DATA sigtab<>+952(SB)/8, $0x3fa47ae147ae147b
// 960: 1/23
DATA sigtab<>+960(SB)/8, $0x3fa642c8590b2164
DATA sigtab<>+968(SB)/8, $0x3fa642c8590b2164
DATA sigtab<>+976(SB)/8, $0x3fa642c8590b2164
DATA sigtab<>+984(SB)/8, $0x3fa642c8590b2164
// 992: 1/21
DATA sigtab<>+992(SB)/8, $0x3fa8618618618618
DATA sigtab<>+1000(SB)/8, $0x3fa8618618618618
DATA sigtab<>+1008(SB)/8, $0x3fa8618618618618
DATA sigtab<>+1016(SB)/8, $0x3fa8618618618618
// 1024: 1/19
DATA sigtab<>+1024(SB)/8, $0x3faaf286bca1af28
DATA sigtab<>+1032(SB)/8, $0x3faaf286bca1af28
DATA sigtab<>+1040(SB)/8, $0x3faaf286bca1af28
DATA sigtab<>+1048(SB)/8, $0x3faaf286bca1af28
// 1056: 1/17
DATA sigtab<>+1056(SB)/8, $0x3fae1e1e1e1e1e1e
DATA sigtab<>+1064(SB)/8, $0x3fae1e1e1e1e1e1e
DATA sigtab<>+1072(SB)/8, $0x3fae1e1e1e1e1e1e
DATA sigtab<>+1080(SB)/8, $0x3fae1e1e1e1e1e1e
// 1088: 1/15
DATA sigtab<>+1088(SB)/8, $0x3fb1111111111111
DATA sigtab<>+1096(SB)/8, $0x3fb1111111111111
DATA sigtab<>+1104(SB)/8, $0x3fb1111111111111
DATA sigtab<>+1112(SB)/8, $0x3fb1111111111111
// 1120: 1/13
DATA sigtab<>+1120(SB)/8, $0x3fb3b13b13b13b14
DATA sigtab<>+1128(SB)/8, $0x3fb3b13b13b13b14
DATA sigtab<>+1136(SB)/8, $0x3fb3b13b13b13b14
DATA sigtab<>+1144(SB)/8, $0x3fb3b13b13b13b14
// 1152: 1/11
DATA sigtab<>+1152(SB)/8, $0x3fb745d1745d1746
DATA sigtab<>+1160(SB)/8, $0x3fb745d1745d1746
DATA sigtab<>+1168(SB)/8, $0x3fb745d1745d1746
DATA sigtab<>+1176(SB)/8, $0x3fb745d1745d1746
// 1184: 1/9
DATA sigtab<>+1184(SB)/8, $0x3fbc71c71c71c71c
DATA sigtab<>+1192(SB)/8, $0x3fbc71c71c71c71c
DATA sigtab<>+1200(SB)/8, $0x3fbc71c71c71c71c
DATA sigtab<>+1208(SB)/8, $0x3fbc71c71c71c71c
// 1216: 1/7
DATA sigtab<>+1216(SB)/8, $0x3fc2492492492492
DATA sigtab<>+1224(SB)/8, $0x3fc2492492492492
DATA sigtab<>+1232(SB)/8, $0x3fc2492492492492
DATA sigtab<>+1240(SB)/8, $0x3fc2492492492492
// 1248: 1/5
DATA sigtab<>+1248(SB)/8, $0x3fc999999999999a
DATA sigtab<>+1256(SB)/8, $0x3fc999999999999a
DATA sigtab<>+1264(SB)/8, $0x3fc999999999999a
DATA sigtab<>+1272(SB)/8, $0x3fc999999999999a
// 1280: 1/3
DATA sigtab<>+1280(SB)/8, $0x3fd5555555555555
DATA sigtab<>+1288(SB)/8, $0x3fd5555555555555
DATA sigtab<>+1296(SB)/8, $0x3fd5555555555555
DATA sigtab<>+1304(SB)/8, $0x3fd5555555555555
// 1312: 1/1
DATA sigtab<>+1312(SB)/8, $0x3ff0000000000000
DATA sigtab<>+1320(SB)/8, $0x3ff0000000000000
DATA sigtab<>+1328(SB)/8, $0x3ff0000000000000
DATA sigtab<>+1336(SB)/8, $0x3ff0000000000000
// 1344: tail mask, 0 lanes
DATA sigtab<>+1344(SB)/8, $0x0000000000000000
DATA sigtab<>+1352(SB)/8, $0x0000000000000000
DATA sigtab<>+1360(SB)/8, $0x0000000000000000
DATA sigtab<>+1368(SB)/8, $0x0000000000000000
// 1376: tail mask, 1 lanes
DATA sigtab<>+1376(SB)/8, $0xffffffffffffffff
DATA sigtab<>+1384(SB)/8, $0x0000000000000000
DATA sigtab<>+1392(SB)/8, $0x0000000000000000
DATA sigtab<>+1400(SB)/8, $0x0000000000000000
// 1408: tail mask, 2 lanes
DATA sigtab<>+1408(SB)/8, $0xffffffffffffffff
DATA sigtab<>+1416(SB)/8, $0xffffffffffffffff
DATA sigtab<>+1424(SB)/8, $0x0000000000000000
DATA sigtab<>+1432(SB)/8, $0x0000000000000000
// 1440: tail mask, 3 lanes
DATA sigtab<>+1440(SB)/8, $0xffffffffffffffff
DATA sigtab<>+1448(SB)/8, $0xffffffffffffffff
DATA sigtab<>+1456(SB)/8, $0xffffffffffffffff
DATA sigtab<>+1464(SB)/8, $0x0000000000000000
GLOBL sigtab<>(SB), RODATA|NOPTR, $1472
