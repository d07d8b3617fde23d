package accountant

import (
	"fmt"
	"math"
)

// Adjacency is the neighbouring relation under which an event's guarantee holds.
type Adjacency int

const (
	// AddRemove: datasets differ by adding or removing one example. The default
	// of dpopt, Opacus, TF Privacy and dp_accounting.
	AddRemove Adjacency = iota
	// ReplaceOne: datasets of equal size differ in one example. Sensitivities of
	// sums double relative to AddRemove.
	ReplaceOne
)

// String returns "add_remove" or "replace_one".
func (a Adjacency) String() string {
	switch a {
	case AddRemove:
		return "add_remove"
	case ReplaceOne:
		return "replace_one"
	}
	return fmt.Sprintf("Adjacency(%d)", int(a))
}

// An Event describes a randomized mechanism before it runs, as dp_accounting's
// DpEvent does: enough to account for its privacy, nothing about the data.
// The concrete events are Gaussian, PoissonSampled, SampledWithoutReplacement,
// Composed and Repeated.
type Event interface {
	// Validate reports whether the event's parameters are valid, and returns a
	// *ParamError (or an error wrapping one) if not.
	Validate() error
	// Adjacency is the neighbouring relation the event is stated under.
	Adjacency() Adjacency
	isEvent()
}

// Gaussian is one release of f(D) + N(0, z²·Δ²·I) where f has L2 sensitivity Δ
// under Adj. NoiseMultiplier is z = σ/Δ; Δ itself does not matter to accounting.
type Gaussian struct {
	NoiseMultiplier float64   // z = σ/Δ, positive and finite.
	Adj             Adjacency // neighbouring relation; zero value AddRemove.
}

// PoissonSampled runs Event on a Poisson subsample: each example is included
// independently with probability Rate. Add/remove adjacency.
type PoissonSampled struct {
	Rate  float64 // sampling probability q in (0, 1].
	Event Event   // the mechanism run on the subsample.
}

// SampledWithoutReplacement runs Event on a uniformly random subset of exactly
// BatchSize of the N examples. Replace-one adjacency (Wang, Balle,
// Kasiviswanathan 2019); Event must be stated under ReplaceOne.
type SampledWithoutReplacement struct {
	N, BatchSize int   // 1 ≤ BatchSize ≤ N.
	Event        Event // the mechanism run on the sample.
}

// Composed is the adaptive composition of Events, in order. All must share one
// adjacency.
type Composed struct {
	Events []Event
}

// Repeated is Count adaptive repetitions of Event (dp_accounting's SelfComposedDpEvent).
type Repeated struct {
	Event Event
	Count int // at least 1.
}

func (Gaussian) isEvent()                  {}
func (PoissonSampled) isEvent()            {}
func (SampledWithoutReplacement) isEvent() {}
func (Composed) isEvent()                  {}
func (Repeated) isEvent()                  {}

// Adjacency implements Event.
func (g Gaussian) Adjacency() Adjacency { return g.Adj }

// Adjacency implements Event: always AddRemove.
func (PoissonSampled) Adjacency() Adjacency { return AddRemove }

// Adjacency implements Event: always ReplaceOne.
func (SampledWithoutReplacement) Adjacency() Adjacency { return ReplaceOne }

// Adjacency implements Event: that of the first event (Validate checks they agree).
func (c Composed) Adjacency() Adjacency {
	if len(c.Events) == 0 || c.Events[0] == nil {
		return AddRemove
	}
	return c.Events[0].Adjacency()
}

// Adjacency implements Event.
func (r Repeated) Adjacency() Adjacency {
	if r.Event == nil {
		return AddRemove
	}
	return r.Event.Adjacency()
}

func finitePositive(name string, v float64) error {
	if !(v > 0) || math.IsInf(v, 0) {
		return &ParamError{Param: name, Value: v, Reason: "must be positive and finite"}
	}
	return nil
}

// Validate implements Event.
func (g Gaussian) Validate() error {
	if g.Adj != AddRemove && g.Adj != ReplaceOne {
		return &ParamError{Param: "Adjacency", Value: float64(g.Adj), Reason: "unknown adjacency"}
	}
	return finitePositive("NoiseMultiplier", g.NoiseMultiplier)
}

// Validate implements Event.
func (p PoissonSampled) Validate() error {
	if !(p.Rate > 0 && p.Rate <= 1) {
		return &ParamError{Param: "Rate", Value: p.Rate, Reason: "sampling rate must be in (0, 1]"}
	}
	if p.Event == nil {
		return fmt.Errorf("accountant: PoissonSampled: nil event")
	}
	if p.Event.Adjacency() != AddRemove {
		return fmt.Errorf("accountant: PoissonSampled: inner event has %v adjacency, want add_remove", p.Event.Adjacency())
	}
	return p.Event.Validate()
}

// Validate implements Event.
func (s SampledWithoutReplacement) Validate() error {
	if s.N < 1 {
		return &ParamError{Param: "N", Value: float64(s.N), Reason: "must be at least 1"}
	}
	if s.BatchSize < 1 || s.BatchSize > s.N {
		return &ParamError{Param: "BatchSize", Value: float64(s.BatchSize), Reason: "must be in [1, N]"}
	}
	if s.Event == nil {
		return fmt.Errorf("accountant: SampledWithoutReplacement: nil event")
	}
	if s.Event.Adjacency() != ReplaceOne {
		return fmt.Errorf("accountant: SampledWithoutReplacement: inner event has %v adjacency, want replace_one", s.Event.Adjacency())
	}
	return s.Event.Validate()
}

// Validate implements Event.
func (c Composed) Validate() error {
	if len(c.Events) == 0 {
		return fmt.Errorf("accountant: Composed: no events")
	}
	for i, e := range c.Events {
		if e == nil {
			return fmt.Errorf("accountant: Composed: event %d is nil", i)
		}
		if err := e.Validate(); err != nil {
			return fmt.Errorf("accountant: Composed: event %d: %w", i, err)
		}
		if e.Adjacency() != c.Events[0].Adjacency() {
			return fmt.Errorf("accountant: Composed: event %d has %v adjacency, event 0 has %v",
				i, e.Adjacency(), c.Events[0].Adjacency())
		}
	}
	return nil
}

// Validate implements Event.
func (r Repeated) Validate() error {
	if r.Count < 1 {
		return &ParamError{Param: "Count", Value: float64(r.Count), Reason: "must be at least 1"}
	}
	if r.Event == nil {
		return fmt.Errorf("accountant: Repeated: nil event")
	}
	return r.Event.Validate()
}
