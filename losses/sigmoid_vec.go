package losses

import "math"

// The vectorised form of sigmoidRow. sigmoidRowVec computes, for one row of
// scores, what sigmoidRow computes — residuals, curvatures and the row's
// loss — with a branch-free algorithm that runs four entries at a time in
// AVX2 assembly (sigmoid_amd64.s) and that sigmoidRowGo spells out in Go, one
// entry at a time, with the same operations in the same order: the two give
// bit-identical results, so a model trained on an amd64 machine with AVX2
// and on any other machine (or with the purego tag) is the same model.
//
// The algorithm, for an entry v with |v| ≤ sigVecMaxScore:
//
//   - e = e^−|v| by Cody–Waite range reduction, −|v| = k·ln 2 + r with k
//     an integer and |r| ≤ ln 2/2 (a shifter constant rounds k, fused
//     multiply-adds keep r exact to the last bit of the two-part ln 2), the
//     degree-13 Taylor polynomial of eʳ (truncation below 2⁻⁵⁷ relative) and
//     2ᵏ built in the exponent bits. Within 2 ulps of math.Exp (measured).
//   - σ(|v|) = 1/(1+e), σ(−|v|) = e·σ(|v|), as in sigmoidRow, and from them
//     the residual and curvature of sigmoidRow's formulas, with the weight
//     α of the negative classes and 1 for the label.
//   - log(1+e) = 2·atanh(u), u = e/(2+e) ∈ (0, 1/3], by the odd series
//     2u·Σⱼ u²ʲ/(2j+1) to j = 15 (truncation below 2⁻⁵⁵ relative), for the
//     loss: within 3 ulps of math.Log1p (measured).
//   - The loss terms are summed in four lanes, entry i in lane i mod 4, and
//     the lanes as (l₀+l₂)+(l₁+l₃).
//
// A row with an entry beyond sigVecMaxScore in magnitude (or a NaN) goes to
// sigmoidRow, with math.Exp, whose e^−|v| may then be subnormal or zero; the
// fast path's 2ᵏ must be a normal number.

// sigVecMaxScore bounds |v| on the vectorised path: e^−700 ≈ 10⁻³⁰⁴ is a
// normal float64 and k ≥ −1010 keeps 2ᵏ normal.
const sigVecMaxScore = 700.0

const (
	sigLog2E   = 1.4426950408889634         // log₂ e, rounded
	sigShifter = 0x1.8p52                   // t = x·log₂e + 1.5·2⁵² rounds x·log₂e to an integer in t's low bits
	sigLn2Hi   = 6.93147180369123816490e-01 // ln 2 to 32 bits: k·sigLn2Hi is exact for |k| < 2²¹
	sigLn2Lo   = 1.90821492927058770002e-10 // ln 2 − sigLn2Hi, rounded
)

// sigExpCoef are the Taylor coefficients 1/n! of eʳ, n = 13 down to 0, in
// Horner order.
var sigExpCoef = [14]float64{
	1.0 / 6227020800, 1.0 / 479001600, 1.0 / 39916800, 1.0 / 3628800,
	1.0 / 362880, 1.0 / 40320, 1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24,
	1.0 / 6, 1.0 / 2, 1, 1,
}

// sigAtanhCoef are the coefficients 1/(2j+1) of the series of atanh(u)/u in
// z = u², j = 15 down to 0, in Horner order.
var sigAtanhCoef = [16]float64{
	1.0 / 31, 1.0 / 29, 1.0 / 27, 1.0 / 25, 1.0 / 23, 1.0 / 21, 1.0 / 19,
	1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11, 1.0 / 9, 1.0 / 7, 1.0 / 5,
	1.0 / 3, 1,
}

// sigmoidRowVec is sigmoidRow by the vectorised algorithm: in assembly when
// the CPU has it, else in Go; sigmoidRow itself for a row with a score
// beyond ±sigVecMaxScore or a NaN.
func sigmoidRowVec(s, curv []float64, y int, alpha float64) float64 {
	if len(s) == 0 {
		return 0
	}
	curv = curv[:len(s)]
	var loss float64
	var ok bool
	if sigmoidHasAsm {
		loss, ok = sigmoidRowAsm(s, curv, y, alpha)
	} else {
		loss, ok = sigmoidRowGo(s, curv, y, alpha)
	}
	if !ok {
		return sigmoidRow(s, curv, y, alpha)
	}
	return loss
}

// sigmoidRowGo is the vectorised algorithm in Go, entry by entry, with the
// assembly's operations in its order: every product whose result the
// assembly rounds is rounded here by a float64 conversion, so that the
// compiler cannot fuse it into a multiply-add. It leaves s and curv
// untouched and returns ok = false if a score is outside ±sigVecMaxScore or
// NaN.
func sigmoidRowGo(s, curv []float64, y int, alpha float64) (loss float64, ok bool) {
	for _, v := range s {
		if !(math.Abs(v) <= sigVecMaxScore) {
			return 0, false
		}
	}
	var acc [4]float64
	for i, v := range s {
		e := sigExp(-math.Abs(v))
		big := 1 / (1 + e)
		small := float64(e * big)
		sp, sn := big, small
		if math.Signbit(v) {
			sp, sn = small, big
		}
		w, mv := alpha, v
		if i == y {
			w, mv = 1, -v
		}
		wsp := float64(w * sp)
		curv[i] = float64(wsp * sn)
		if i == y {
			s[i] = -sn
		} else {
			s[i] = wsp
		}
		l1 := sigLog1p(e)
		acc[i%4] += float64(w * (max(mv, 0) + l1))
	}
	return (acc[0] + acc[2]) + (acc[1] + acc[3]), true
}

// sigExp is eˣ for x ∈ [−sigVecMaxScore, 0] by the vectorised algorithm's
// steps (range reduction, polynomial, 2ᵏ in the exponent bits).
func sigExp(x float64) float64 {
	t := math.FMA(x, sigLog2E, sigShifter)
	k := t - sigShifter
	r := math.FMA(k, -sigLn2Hi, x)
	r = math.FMA(k, -sigLn2Lo, r)
	p := sigExpCoef[0]
	for _, c := range sigExpCoef[1:] {
		p = math.FMA(p, r, c)
	}
	scale := math.Float64frombits((math.Float64bits(t) + 1023) << 52)
	return float64(p * scale)
}

// sigLog1p is log(1+e) for e ∈ (0, 1] by the vectorised algorithm's atanh
// series.
func sigLog1p(e float64) float64 {
	u := e / (2 + e)
	z := float64(u * u)
	q := sigAtanhCoef[0]
	for _, c := range sigAtanhCoef[1:] {
		q = math.FMA(q, z, c)
	}
	return float64((u + u) * q)
}
