package dp

import (
	"math"

	"github.com/dpopt/dpopt/accountant"
)

// Adjacency is the neighbouring relation a sensitivity is computed for. It
// is accountant.Adjacency, so that a mechanism's sensitivity and its
// accounting event name the same relation.
type Adjacency = accountant.Adjacency

const (
	// AddRemove: neighbouring datasets differ by adding or removing one
	// example; the dataset size is public. The default of dpopt, as of Opacus,
	// TF Privacy and dp_accounting.
	AddRemove = accountant.AddRemove
	// ReplaceOne: neighbouring datasets differ by replacing one example. Every
	// sensitivity below doubles (triangle inequality through the dataset
	// without that example).
	ReplaceOne = accountant.ReplaceOne
)

// scale applies adjacency a to an add/remove sensitivity s.
func scaleFor(a Adjacency, s float64) (float64, error) {
	switch a {
	case AddRemove:
	case ReplaceOne:
		s *= 2
	default:
		return 0, paramError("Adjacency", float64(a), "must be AddRemove or ReplaceOne")
	}
	return s, checkPositive("Sensitivity", s) // catches overflow
}

// GramSensitivity returns the L2 (Frobenius) sensitivity of the Gram matrix
// Σ x̃x̃ᵀ of rows clipped to norm clip: clip² under AddRemove, since
// ‖x̃x̃ᵀ‖_F = ‖x̃‖². The same value holds for the per-class Grams
// {Σ_{y=l} x̃x̃ᵀ}_l released jointly, since each example is in one class.
// Under ReplaceOne it is 2·clip² (a tighter √2·clip² holds for one Gram, but
// is not used). It returns a *ParamError for clip not positive and finite or
// an invalid adjacency.
func GramSensitivity(clip float64, adj Adjacency) (float64, error) {
	if err := checkPositive("ClipNorm", clip); err != nil {
		return 0, err
	}
	return scaleFor(adj, clip*clip)
}

// SumSensitivity returns the L2 sensitivity of a sum of vectors of norm at most
// clip, for example the per-class sums XᵀY with one-hot Y (d×K, Frobenius
// norm) of rows clipped to norm clip: clip under AddRemove, 2·clip under
// ReplaceOne. It returns a *ParamError for clip not positive and finite or an
// invalid adjacency.
func SumSensitivity(clip float64, adj Adjacency) (float64, error) {
	if err := checkPositive("ClipNorm", clip); err != nil {
		return 0, err
	}
	return scaleFor(adj, clip)
}

// GradientSumSensitivity returns the L2 (Frobenius) sensitivity of the sum of
// per-example gradients clipped to norm gradClip: gradClip under AddRemove,
// 2·gradClip under ReplaceOne. It returns a *ParamError for gradClip not
// positive and finite or an invalid adjacency.
func GradientSumSensitivity(gradClip float64, adj Adjacency) (float64, error) {
	if err := checkPositive("GradientClipNorm", gradClip); err != nil {
		return 0, err
	}
	return scaleFor(adj, gradClip)
}

// OneVsAllHessianSensitivity returns the joint L2 sensitivity of the K
// one-vs-all logistic Hessians {Σ_i w_il·s_il(1−s_il)·x̃_ix̃_iᵀ}_l, l < classes,
// for rows clipped to norm clip: √K·max(1, negWeight)·clip²/4 under AddRemove,
// since s(1−s) ≤ 1/4, each example adds a term of Frobenius norm at most
// w·clip²/4 to each of the K Hessians, and its weight w is 1 in its own class
// and negWeight (α) in the others. With negWeight ≤ 1 this is the √K·C²/4 of
// the design table. ReplaceOne doubles it. It returns a *ParamError for clip
// or negWeight not positive and finite, classes < 1, or an invalid adjacency.
func OneVsAllHessianSensitivity(clip float64, classes int, negWeight float64, adj Adjacency) (float64, error) {
	if err := checkOneVsAll(clip, classes, negWeight); err != nil {
		return 0, err
	}
	return scaleFor(adj, math.Sqrt(float64(classes))*max(1, negWeight)*clip*clip/4)
}

// OneVsAllGradientSensitivity returns the joint L2 sensitivity of the K
// one-vs-all logistic loss gradients {Σ_i w_il·(s_il − y_il)·x̃_i}_l, for rows
// clipped to norm clip: √K·max(1, negWeight)·clip under AddRemove, since
// |s − y| ≤ 1 and the weight is 1 for the example's own class and negWeight
// (α) for the others. ReplaceOne doubles it. It returns a *ParamError for clip
// or negWeight not positive and finite, classes < 1, or an invalid adjacency.
func OneVsAllGradientSensitivity(clip float64, classes int, negWeight float64, adj Adjacency) (float64, error) {
	if err := checkOneVsAll(clip, classes, negWeight); err != nil {
		return 0, err
	}
	return scaleFor(adj, math.Sqrt(float64(classes))*max(1, negWeight)*clip)
}

func checkOneVsAll(clip float64, classes int, negWeight float64) error {
	if err := checkPositive("ClipNorm", clip); err != nil {
		return err
	}
	if classes < 1 {
		return paramError("Classes", float64(classes), "must be at least 1")
	}
	return checkPositive("NegativeWeight", negWeight)
}
