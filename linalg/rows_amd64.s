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
