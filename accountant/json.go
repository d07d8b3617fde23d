package accountant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Tagged JSON form of events. Every node is an object with a "type":
//
//	{"type": "gaussian", "noise_multiplier": 1.1, "adjacency": "add_remove"}
//	{"type": "poisson_sampled", "rate": 0.01, "event": {…}}
//	{"type": "sampled_without_replacement", "n": 60000, "batch_size": 256, "event": {…}}
//	{"type": "composed", "events": [{…}, …]}
//	{"type": "repeated", "count": 1000, "event": {…}}
//
// "adjacency" is "add_remove" (the default when absent) or "replace_one".
// Floats are written in the shortest form that reads back to the same
// double, so a decoded event accounts to identical numbers.

// MaxEventDepth bounds the nesting of a decoded event tree.
const MaxEventDepth = 32

// MaxEventNodes bounds the number of nodes in a decoded event tree.
const MaxEventNodes = 1 << 20

type eventJSON struct {
	Type            string            `json:"type"`
	NoiseMultiplier *float64          `json:"noise_multiplier,omitempty"`
	Adjacency       string            `json:"adjacency,omitempty"`
	Rate            *float64          `json:"rate,omitempty"`
	N               *int              `json:"n,omitempty"`
	BatchSize       *int              `json:"batch_size,omitempty"`
	Count           *int              `json:"count,omitempty"`
	Event           json.RawMessage   `json:"event,omitempty"`
	Events          []json.RawMessage `json:"events,omitempty"`
}

// MarshalEvent returns the tagged JSON form of e. The event is validated
// first: an invalid event (for example a NaN noise multiplier, which JSON
// cannot carry) is an error.
func MarshalEvent(e Event) ([]byte, error) {
	if e == nil {
		return nil, fmt.Errorf("accountant: marshal: nil event")
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("accountant: marshal: %w", err)
	}
	var buf bytes.Buffer
	if err := writeEvent(&buf, e); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func ptr[T any](v T) *T { return &v }

func writeEvent(w *bytes.Buffer, e Event) error {
	var j eventJSON
	switch e := e.(type) {
	case Gaussian:
		j = eventJSON{Type: "gaussian", NoiseMultiplier: ptr(e.NoiseMultiplier), Adjacency: e.Adj.String()}
	case PoissonSampled:
		j = eventJSON{Type: "poisson_sampled", Rate: ptr(e.Rate)}
		if err := nested(&j.Event, e.Event); err != nil {
			return err
		}
	case SampledWithoutReplacement:
		j = eventJSON{Type: "sampled_without_replacement", N: ptr(e.N), BatchSize: ptr(e.BatchSize)}
		if err := nested(&j.Event, e.Event); err != nil {
			return err
		}
	case Composed:
		j = eventJSON{Type: "composed", Events: make([]json.RawMessage, len(e.Events))}
		for i, c := range e.Events {
			if err := nested(&j.Events[i], c); err != nil {
				return err
			}
		}
	case Repeated:
		j = eventJSON{Type: "repeated", Count: ptr(e.Count)}
		if err := nested(&j.Event, e.Event); err != nil {
			return err
		}
	default:
		return fmt.Errorf("accountant: marshal: unknown event type %T", e)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("accountant: marshal: %w", err)
	}
	w.Write(b)
	return nil
}

func nested(dst *json.RawMessage, e Event) error {
	var buf bytes.Buffer
	if err := writeEvent(&buf, e); err != nil {
		return err
	}
	*dst = buf.Bytes()
	return nil
}

// UnmarshalEvent decodes the tagged JSON form written by MarshalEvent. It is
// meant for untrusted input: unknown types, unknown or missing fields,
// trailing data, nesting deeper than MaxEventDepth or more than
// MaxEventNodes nodes are errors matching ErrFormat, and the decoded event
// is validated (invalid values give a *ParamError).
func UnmarshalEvent(data []byte) (Event, error) {
	nodes := 0
	e, err := readEvent(data, 0, &nodes)
	if err != nil {
		return nil, asFormat(err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("accountant: unmarshal: %w", err)
	}
	return e, nil
}

func decodeStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after event")
	}
	return nil
}

func readEvent(data []byte, depth int, nodes *int) (Event, error) {
	if depth >= MaxEventDepth {
		return nil, fmt.Errorf("accountant: unmarshal: events nested deeper than %d", MaxEventDepth)
	}
	if *nodes++; *nodes > MaxEventNodes {
		return nil, fmt.Errorf("accountant: unmarshal: more than %d events", MaxEventNodes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("accountant: unmarshal: missing event")
	}
	var j eventJSON
	if err := decodeStrict(data, &j); err != nil {
		return nil, fmt.Errorf("accountant: unmarshal: %w", err)
	}
	missing := func(field string) error {
		return fmt.Errorf("accountant: unmarshal: %s event: missing %q", j.Type, field)
	}
	extra := func() error {
		return fmt.Errorf("accountant: unmarshal: %s event: unexpected fields", j.Type)
	}
	sub := func() (Event, error) {
		if j.Event == nil {
			return nil, missing("event")
		}
		return readEvent(j.Event, depth+1, nodes)
	}
	switch j.Type {
	case "gaussian":
		if j.NoiseMultiplier == nil {
			return nil, missing("noise_multiplier")
		}
		if j.Rate != nil || j.N != nil || j.BatchSize != nil || j.Count != nil || j.Event != nil || j.Events != nil {
			return nil, extra()
		}
		g := Gaussian{NoiseMultiplier: *j.NoiseMultiplier}
		switch j.Adjacency {
		case "", "add_remove":
		case "replace_one":
			g.Adj = ReplaceOne
		default:
			return nil, fmt.Errorf("accountant: unmarshal: unknown adjacency %q", j.Adjacency)
		}
		return g, nil
	case "poisson_sampled":
		if j.Rate == nil {
			return nil, missing("rate")
		}
		if j.NoiseMultiplier != nil || j.Adjacency != "" || j.N != nil || j.BatchSize != nil || j.Count != nil || j.Events != nil {
			return nil, extra()
		}
		in, err := sub()
		if err != nil {
			return nil, err
		}
		return PoissonSampled{Rate: *j.Rate, Event: in}, nil
	case "sampled_without_replacement":
		if j.N == nil {
			return nil, missing("n")
		}
		if j.BatchSize == nil {
			return nil, missing("batch_size")
		}
		if j.NoiseMultiplier != nil || j.Adjacency != "" || j.Rate != nil || j.Count != nil || j.Events != nil {
			return nil, extra()
		}
		in, err := sub()
		if err != nil {
			return nil, err
		}
		return SampledWithoutReplacement{N: *j.N, BatchSize: *j.BatchSize, Event: in}, nil
	case "composed":
		if j.Events == nil {
			return nil, missing("events")
		}
		if j.NoiseMultiplier != nil || j.Adjacency != "" || j.Rate != nil || j.N != nil || j.BatchSize != nil || j.Count != nil || j.Event != nil {
			return nil, extra()
		}
		c := Composed{Events: make([]Event, 0, min(len(j.Events), 1024))}
		for _, raw := range j.Events {
			in, err := readEvent(raw, depth+1, nodes)
			if err != nil {
				return nil, err
			}
			c.Events = append(c.Events, in)
		}
		return c, nil
	case "repeated":
		if j.Count == nil {
			return nil, missing("count")
		}
		if j.NoiseMultiplier != nil || j.Adjacency != "" || j.Rate != nil || j.N != nil || j.BatchSize != nil || j.Events != nil {
			return nil, extra()
		}
		in, err := sub()
		if err != nil {
			return nil, err
		}
		return Repeated{Event: in, Count: *j.Count}, nil
	case "":
		return nil, fmt.Errorf("accountant: unmarshal: event without \"type\"")
	}
	return nil, fmt.Errorf("accountant: unmarshal: unknown event type %q", j.Type)
}

// MarshalJSON implements json.Marshaler with the tagged form of MarshalEvent.
func (g Gaussian) MarshalJSON() ([]byte, error) { return MarshalEvent(g) }

// MarshalJSON implements json.Marshaler with the tagged form of MarshalEvent.
func (p PoissonSampled) MarshalJSON() ([]byte, error) { return MarshalEvent(p) }

// MarshalJSON implements json.Marshaler with the tagged form of MarshalEvent.
func (s SampledWithoutReplacement) MarshalJSON() ([]byte, error) { return MarshalEvent(s) }

// MarshalJSON implements json.Marshaler with the tagged form of MarshalEvent.
func (c Composed) MarshalJSON() ([]byte, error) { return MarshalEvent(c) }

// MarshalJSON implements json.Marshaler with the tagged form of MarshalEvent.
func (r Repeated) MarshalJSON() ([]byte, error) { return MarshalEvent(r) }
