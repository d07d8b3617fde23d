package optim

import (
	"math"

	"github.com/dpopt/dpopt/accountant"
)

// An Optimizer turns the noisy gradients released by a DP solver into
// parameter updates. An update reads only the released (noisy) gradient, the
// parameters and the optimizer's own state, all of which are functions of
// earlier releases: it is post-processing and costs no privacy.
//
// The implementations are Plain, Momentum and Adam; a nil Optimizer in a
// solver means Plain. The interface is sealed: its methods are unexported.
type Optimizer interface {
	// Name returns "sgd", "momentum" or "adam".
	Name() string
	validate() error
	// start returns fresh state for a parameter vector of the given size.
	start(size int) updater
}

// An updater applies one update to a flat parameter vector.
type updater interface {
	// update sets params ← params − lr·direction(grad); grad is not modified.
	update(params, grad []float64, lr float64)
}

// Plain is plain (stochastic) gradient descent: θ ← θ − η·g.
type Plain struct{}

var _ Optimizer = Plain{}

// Name returns "sgd".
func (Plain) Name() string { return "sgd" }

func (Plain) validate() error { return nil }

func (Plain) start(int) updater { return plainState{} }

type plainState struct{}

func (plainState) update(params, grad []float64, lr float64) {
	for i, g := range grad {
		params[i] -= lr * g
	}
}

// Momentum is gradient descent with momentum in its exponential-moving-average
// form: v ← β·v + (1−β)·g, θ ← θ − η·v, with v = 0 at the start. With this
// form a constant gradient eventually moves θ as far per step as Plain does, so
// the same learning rate applies to both; the averaging also smooths the
// per-step noise of DP-SGD.
type Momentum struct {
	// Beta is β in [0, 1); zero means 0.9.
	Beta float64
}

var _ Optimizer = Momentum{}

// Name returns "momentum".
func (Momentum) Name() string { return "momentum" }

func (m Momentum) validate() error {
	if !(m.Beta >= 0 && m.Beta < 1) {
		return &accountant.ParamError{Param: "Momentum.Beta", Value: m.Beta, Reason: "must be in [0, 1) (0 = default 0.9)"}
	}
	return nil
}

func (m Momentum) start(size int) updater {
	beta := m.Beta
	if beta == 0 {
		beta = 0.9
	}
	return &momentumState{beta: beta, v: make([]float64, size)}
}

type momentumState struct {
	beta float64
	v    []float64
}

func (s *momentumState) update(params, grad []float64, lr float64) {
	for i, g := range grad {
		s.v[i] = s.beta*s.v[i] + (1-s.beta)*g
		params[i] -= lr * s.v[i]
	}
}

// Adam is the Adam optimizer (Kingma, Ba, "Adam: A Method for Stochastic
// Optimization", ICLR 2015, arXiv 1412.6980) with bias correction:
// m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², θ ← θ − η·m̂/(√v̂ + ϵ), with
// m̂ = m/(1−β₁ᵗ) and v̂ = v/(1−β₂ᵗ). Its steps are about η per coordinate
// whatever the gradient's scale, so its learning rate is on a different scale
// from Plain's: see SGD.LearningRate.
type Adam struct {
	// Beta1 and Beta2 are β₁, β₂ in [0, 1); zero means 0.9 and 0.999.
	Beta1, Beta2 float64
	// Epsilon is ϵ > 0, added to √v̂; zero means 1e-8.
	Epsilon float64
}

var _ Optimizer = Adam{}

// Name returns "adam".
func (Adam) Name() string { return "adam" }

func (a Adam) validate() error {
	if !(a.Beta1 >= 0 && a.Beta1 < 1) {
		return &accountant.ParamError{Param: "Adam.Beta1", Value: a.Beta1, Reason: "must be in [0, 1) (0 = default 0.9)"}
	}
	if !(a.Beta2 >= 0 && a.Beta2 < 1) {
		return &accountant.ParamError{Param: "Adam.Beta2", Value: a.Beta2, Reason: "must be in [0, 1) (0 = default 0.999)"}
	}
	if !(a.Epsilon >= 0) || math.IsInf(a.Epsilon, 0) {
		return &accountant.ParamError{Param: "Adam.Epsilon", Value: a.Epsilon, Reason: "must be non-negative and finite (0 = default 1e-8)"}
	}
	return nil
}

func (a Adam) start(size int) updater {
	s := &adamState{b1: a.Beta1, b2: a.Beta2, eps: a.Epsilon, m: make([]float64, size), v: make([]float64, size)}
	if s.b1 == 0 {
		s.b1 = 0.9
	}
	if s.b2 == 0 {
		s.b2 = 0.999
	}
	if s.eps == 0 {
		s.eps = 1e-8
	}
	return s
}

type adamState struct {
	b1, b2, eps float64
	m, v        []float64
	p1, p2      float64 // β₁ᵗ, β₂ᵗ
	t           int
}

func (s *adamState) update(params, grad []float64, lr float64) {
	if s.t == 0 {
		s.p1, s.p2 = 1, 1
	}
	s.t++
	s.p1 *= s.b1
	s.p2 *= s.b2
	c1, c2 := 1/(1-s.p1), 1/(1-s.p2)
	for i, g := range grad {
		s.m[i] = s.b1*s.m[i] + (1-s.b1)*g
		s.v[i] = s.b2*s.v[i] + (1-s.b2)*g*g
		params[i] -= lr * (s.m[i] * c1) / (math.Sqrt(s.v[i]*c2) + s.eps)
	}
}
