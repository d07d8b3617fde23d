package accountant

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEventJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    Event
	}{
		{"gaussian", Gaussian{NoiseMultiplier: 1.1}},
		{"gaussian replace-one", Gaussian{NoiseMultiplier: 0.1 + 0.2, Adj: ReplaceOne}},
		{"poisson", PoissonSampled{Rate: 256.0 / 60000.0, Event: Gaussian{NoiseMultiplier: 1}}},
		{"wor", SampledWithoutReplacement{N: 60000, BatchSize: 256, Event: Gaussian{NoiseMultiplier: 2, Adj: ReplaceOne}}},
		{"dp-fc", Composed{Events: []Event{
			Gaussian{NoiseMultiplier: 3},
			Repeated{Count: 1000, Event: PoissonSampled{Rate: 0.01, Event: Gaussian{NoiseMultiplier: 1.3}}},
		}}},
		{"nested", Repeated{Count: 3, Event: Composed{Events: []Event{Repeated{Count: 2, Event: Gaussian{NoiseMultiplier: 5e-3}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := MarshalEvent(tt.e)
			require.NoError(t, err)
			got, err := UnmarshalEvent(b)
			require.NoError(t, err)
			if !eventsEqual(got, tt.e) {
				t.Errorf("round trip of %s: got %#v, want %#v", b, got, tt.e)
			}
			// json.Marshal of an event (or of a struct holding one) uses the
			// same tagged form.
			b2, err := json.Marshal(tt.e)
			require.NoError(t, err)
			if string(b2) != string(b) {
				t.Errorf("json.Marshal = %s, want %s", b2, b)
			}
			// Accounting is unchanged, bit for bit.
			e1, err1 := RDP{}.Epsilon(tt.e, 1e-5)
			e2, err2 := RDP{}.Epsilon(got, 1e-5)
			if errors.Is(err1, ErrUnsupported) {
				return
			}
			require.NoError(t, err1)
			require.NoError(t, err2)
			if e1 != e2 {
				t.Errorf("ε after round trip = %v, want %v", e2, e1)
			}
		})
	}
}

func TestEventJSONFormat(t *testing.T) {
	b, err := MarshalEvent(Repeated{Count: 10, Event: PoissonSampled{Rate: 0.5, Event: Gaussian{NoiseMultiplier: 2}}})
	require.NoError(t, err)
	want := `{"type":"repeated","count":10,"event":{"type":"poisson_sampled","rate":0.5,"event":{"type":"gaussian","noise_multiplier":2,"adjacency":"add_remove"}}}`
	if string(b) != want {
		t.Errorf("MarshalEvent = %s, want %s", b, want)
	}
}

func TestEventJSONHostile(t *testing.T) {
	deep := strings.Repeat(`{"type":"repeated","count":1,"event":`, MaxEventDepth+1) +
		`{"type":"gaussian","noise_multiplier":1}` + strings.Repeat(`}`, MaxEventDepth+1)
	okDeep := strings.Repeat(`{"type":"repeated","count":1,"event":`, MaxEventDepth-1) +
		`{"type":"gaussian","noise_multiplier":1}` + strings.Repeat(`}`, MaxEventDepth-1)
	tests := []struct {
		name, in string
		param    bool // want a *ParamError
	}{
		{"empty", ``, false},
		{"null", `null`, false},
		{"not an object", `[1,2]`, false},
		{"no type", `{"noise_multiplier":1}`, false},
		{"unknown type", `{"type":"laplace","scale":1}`, false},
		{"unknown field", `{"type":"gaussian","noise_multiplier":1,"sensitivity":2}`, false},
		{"field of another type", `{"type":"gaussian","noise_multiplier":1,"rate":0.5}`, false},
		{"missing sigma", `{"type":"gaussian"}`, false},
		{"zero sigma", `{"type":"gaussian","noise_multiplier":0}`, true},
		{"negative sigma", `{"type":"gaussian","noise_multiplier":-1}`, true},
		{"string sigma", `{"type":"gaussian","noise_multiplier":"NaN"}`, false},
		{"huge sigma", `{"type":"gaussian","noise_multiplier":1e999}`, false},
		{"bad adjacency", `{"type":"gaussian","noise_multiplier":1,"adjacency":"swap"}`, false},
		{"rate above 1", `{"type":"poisson_sampled","rate":1.5,"event":{"type":"gaussian","noise_multiplier":1}}`, true},
		{"rate 0", `{"type":"poisson_sampled","rate":0,"event":{"type":"gaussian","noise_multiplier":1}}`, true},
		{"poisson without event", `{"type":"poisson_sampled","rate":0.5}`, false},
		{"poisson null event", `{"type":"poisson_sampled","rate":0.5,"event":null}`, false},
		{"poisson of replace-one", `{"type":"poisson_sampled","rate":0.5,"event":{"type":"gaussian","noise_multiplier":1,"adjacency":"replace_one"}}`, false},
		{"batch above n", `{"type":"sampled_without_replacement","n":10,"batch_size":11,"event":{"type":"gaussian","noise_multiplier":1,"adjacency":"replace_one"}}`, true},
		{"count 0", `{"type":"repeated","count":0,"event":{"type":"gaussian","noise_multiplier":1}}`, true},
		{"count float", `{"type":"repeated","count":1.5,"event":{"type":"gaussian","noise_multiplier":1}}`, false},
		{"count overflow", `{"type":"repeated","count":99999999999999999999999,"event":{"type":"gaussian","noise_multiplier":1}}`, false},
		{"empty composed", `{"type":"composed","events":[]}`, false},
		{"mixed adjacency", `{"type":"composed","events":[{"type":"gaussian","noise_multiplier":1},{"type":"gaussian","noise_multiplier":1,"adjacency":"replace_one"}]}`, false},
		{"trailing data", `{"type":"gaussian","noise_multiplier":1} {}`, false},
		{"too deep", deep, false},
		{"truncated", `{"type":"repeated","count":1,"event":{"type":"gaussian"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := UnmarshalEvent([]byte(tt.in))
			if err == nil {
				t.Fatalf("UnmarshalEvent(%s) = %#v, want an error", tt.in, e)
			}
			if e != nil {
				t.Errorf("UnmarshalEvent returned event %#v with error", e)
			}
			if !strings.HasPrefix(err.Error(), "accountant: ") {
				t.Errorf("error %q lacks the accountant: prefix", err)
			}
			var pe *ParamError
			if tt.param && !errors.As(err, &pe) {
				t.Errorf("error %v is not a *ParamError", err)
			}
		})
	}
	_, err := UnmarshalEvent([]byte(okDeep))
	require.NoError(t, err, "nesting of depth MaxEventDepth must decode")
}

func TestMarshalInvalidEvent(t *testing.T) {
	for _, e := range []Event{nil, Gaussian{}, Composed{}, Repeated{Event: Gaussian{NoiseMultiplier: 1}}} {
		if b, err := MarshalEvent(e); err == nil {
			t.Errorf("MarshalEvent(%#v) = %s, want an error", e, b)
		}
	}
}

// eventsEqual compares event trees structurally.
func eventsEqual(a, b Event) bool {
	switch a := a.(type) {
	case Gaussian:
		b, ok := b.(Gaussian)
		return ok && a == b
	case PoissonSampled:
		b, ok := b.(PoissonSampled)
		return ok && a.Rate == b.Rate && eventsEqual(a.Event, b.Event)
	case SampledWithoutReplacement:
		b, ok := b.(SampledWithoutReplacement)
		return ok && a.N == b.N && a.BatchSize == b.BatchSize && eventsEqual(a.Event, b.Event)
	case Repeated:
		b, ok := b.(Repeated)
		return ok && a.Count == b.Count && eventsEqual(a.Event, b.Event)
	case Composed:
		b, ok := b.(Composed)
		if !ok || len(a.Events) != len(b.Events) {
			return false
		}
		for i := range a.Events {
			if !eventsEqual(a.Events[i], b.Events[i]) {
				return false
			}
		}
		return true
	}
	return false
}
