package accountant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sync"
	"time"
)

// A Budget is a total (ε, δ) guarantee a Ledger must not exceed.
type Budget struct {
	Epsilon float64 `json:"epsilon"` // total ε, positive and finite
	Delta   float64 `json:"delta"`   // δ in (0, 1) at which ε is measured
}

func (b Budget) validate() error {
	if !(b.Epsilon > 0) || math.IsInf(b.Epsilon, 1) {
		return &ParamError{Param: "Budget.Epsilon", Value: b.Epsilon, Reason: "must be positive and finite"}
	}
	if !(b.Delta > 0 && b.Delta < 1) {
		return &ParamError{Param: "Budget.Delta", Value: b.Delta, Reason: "must be in (0, 1)"}
	}
	return nil
}

// An Entry is one recorded release.
type Entry struct {
	Label string    // what was released, e.g. "gram" or "step 17"
	Event Event     // its privacy event
	Time  time.Time // when it was recorded (wall clock, no monotonic reading)
}

// A Ledger records every noisy release of a run, or of a series of runs, and
// refuses any release that would take the adaptive composition of all
// recorded events beyond its Budget under its Accountant.
//
// A Ledger is safe for concurrent use: Spend, Check and the readers are
// serialised by a mutex, so two releases can never both pass the check and
// together exceed the budget. It can be saved with WriteTo (or
// json.Marshal) and restored with ReadLedger (or json.Unmarshal), and goes on
// counting from where it stopped; the accountant is recorded by name and
// restored from the registry (see Register).
type Ledger struct {
	mu      sync.Mutex
	budget  Budget
	acc     Accountant
	entries []Entry
	// The composition of the entries, grouped: identical events (same tagged
	// JSON) are one Repeated, in order of first appearance. Accounting is
	// invariant under reordering a composition, and the grouping keeps each
	// Spend from recomputing a long history event by event.
	keys   map[string]int
	groups []Repeated
	spent  float64
	now    func() time.Time
}

// NewLedger returns an empty ledger enforcing budget under acc.
func NewLedger(budget Budget, acc Accountant) (*Ledger, error) {
	if err := budget.validate(); err != nil {
		return nil, err
	}
	if acc == nil {
		return nil, nilParam("Accountant")
	}
	return &Ledger{budget: budget, acc: acc, keys: make(map[string]int), now: time.Now}, nil
}

// Budget returns the ledger's budget.
func (l *Ledger) Budget() Budget { return l.budget }

// Accountant returns the ledger's accountant.
func (l *Ledger) Accountant() Accountant { return l.acc }

// total returns the grouped composition with e added (e may be nil), and the
// key of e.
func (l *Ledger) total(e Event) (Event, string, error) {
	groups := l.groups
	key := ""
	if e != nil {
		b, err := MarshalEvent(e)
		if err != nil {
			return nil, "", err
		}
		key = string(b)
		groups = append([]Repeated(nil), l.groups...)
		if i, ok := l.keys[key]; ok {
			groups[i].Count++
		} else {
			groups = append(groups, Repeated{Event: e, Count: 1})
		}
	}
	if len(groups) == 0 {
		return nil, key, nil
	}
	c := Composed{Events: make([]Event, len(groups))}
	for i, g := range groups {
		c.Events[i] = g
	}
	return c, key, nil
}

// epsilonWith returns the ε the ledger would have spent with e added.
func (l *Ledger) epsilonWith(e Event) (float64, string, error) {
	if e == nil {
		return 0, "", nilParam("Event")
	}
	if err := e.Validate(); err != nil {
		return 0, "", err
	}
	tot, key, err := l.total(e)
	if err != nil {
		return 0, "", err
	}
	if err := tot.Validate(); err != nil { // mixed adjacency
		return 0, "", fmt.Errorf("accountant: ledger: %w", err)
	}
	eps, err := l.acc.Epsilon(tot, l.budget.Delta)
	if err != nil {
		return 0, "", fmt.Errorf("accountant: ledger: %w", err)
	}
	return eps, key, nil
}

// Check returns the total ε, at the budget's δ, that the ledger would have
// spent if e were released now, without recording anything. The error wraps
// ErrBudgetExceeded if that is over budget.
func (l *Ledger) Check(e Event) (float64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	eps, _, err := l.epsilonWith(e)
	if err != nil {
		return 0, err
	}
	if eps > l.budget.Epsilon {
		return eps, l.exceeded("", eps)
	}
	return eps, nil
}

func (l *Ledger) exceeded(label string, eps float64) error {
	if label != "" {
		label = fmt.Sprintf(" %q", label)
	}
	return fmt.Errorf("accountant: release%s would spend ε = %.6g of %.6g at δ = %g (%s): %w",
		label, eps, l.budget.Epsilon, l.budget.Delta, l.acc.Name(), ErrBudgetExceeded)
}

// Spend records the release of e under label if the composition of all
// recorded events and e stays within budget. Otherwise it records nothing and
// returns an error wrapping ErrBudgetExceeded; the caller must then release
// nothing. Invalid events and events the accountant does not support are
// errors too, and are not recorded.
func (l *Ledger) Spend(label string, e Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	eps, key, err := l.epsilonWith(e)
	if err != nil {
		return err
	}
	if eps > l.budget.Epsilon {
		return l.exceeded(label, eps)
	}
	if i, ok := l.keys[key]; ok {
		l.groups[i].Count++
	} else {
		l.keys[key] = len(l.groups)
		l.groups = append(l.groups, Repeated{Event: e, Count: 1})
	}
	l.entries = append(l.entries, Entry{Label: label, Event: e, Time: l.now().Round(0)})
	l.spent = eps
	return nil
}

// Epsilon returns the ε spent so far, at the budget's δ (0 if nothing was
// recorded).
func (l *Ledger) Epsilon() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spent
}

// Remaining returns the budget's ε minus the ε spent (at least 0). ε does not
// compose additively, so this says how far the ledger is from its limit, not
// how much a further release may cost; use Check for that.
func (l *Ledger) Remaining() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return math.Max(0, l.budget.Epsilon-l.spent)
}

// Entries returns a copy of the recorded entries, oldest first.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// Event returns the composition of all recorded events (nil if none), grouped
// as the ledger accounts for it.
func (l *Ledger) Event() Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, _, _ := l.total(nil)
	return e
}

// ledgerVersion is the version of the JSON form.
const ledgerVersion = 1

type ledgerJSON struct {
	Version    int         `json:"version"`
	Accountant string      `json:"accountant"`
	Budget     Budget      `json:"budget"`
	Entries    []entryJSON `json:"entries"`
}

type entryJSON struct {
	Label string          `json:"label"`
	Time  time.Time       `json:"time"`
	Event json.RawMessage `json:"event"`
}

// MarshalJSON implements json.Marshaler:
//
//	{"version": 1, "accountant": "rdp", "budget": {"epsilon": 8, "delta": 1e-5},
//	 "entries": [{"label": "gram", "time": "…", "event": {…}}, …]}
//
// Events use the tagged form of MarshalEvent.
func (l *Ledger) MarshalJSON() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	j := ledgerJSON{Version: ledgerVersion, Accountant: l.acc.Name(), Budget: l.budget, Entries: make([]entryJSON, len(l.entries))}
	for i, e := range l.entries {
		b, err := MarshalEvent(e.Event)
		if err != nil {
			return nil, err
		}
		j.Entries[i] = entryJSON{Label: e.Label, Time: e.Time, Event: b}
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler. It replaces l's contents with
// the saved ledger, whose accountant must be registered, and recomputes the
// ε spent. A saved history over its budget loads (it is the record of what
// was released) but refuses every further Spend. A malformed encoding gives
// an error matching ErrFormat; an invalid budget or event value a
// *ParamError.
func (l *Ledger) UnmarshalJSON(data []byte) error {
	return asFormat(l.unmarshalJSON(data))
}

func (l *Ledger) unmarshalJSON(data []byte) error {
	var j ledgerJSON
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&j); err != nil {
		return fmt.Errorf("accountant: ledger: %w", err)
	}
	// Anything after the ledger (a second ledger appended to the file, say)
	// would be spending silently ignored: refuse it.
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("accountant: ledger: trailing data after the ledger")
	}
	if j.Version != ledgerVersion {
		return fmt.Errorf("accountant: ledger: unsupported version %d", j.Version)
	}
	acc, err := AccountantByName(j.Accountant)
	if err != nil {
		return err
	}
	n, err := NewLedger(j.Budget, acc)
	if err != nil {
		return err
	}
	for i, ej := range j.Entries {
		e, err := UnmarshalEvent(ej.Event)
		if err != nil {
			return fmt.Errorf("accountant: ledger: entry %d: %w", i, err)
		}
		b, _ := MarshalEvent(e)
		key := string(b)
		if k, ok := n.keys[key]; ok {
			n.groups[k].Count++
		} else {
			n.keys[key] = len(n.groups)
			n.groups = append(n.groups, Repeated{Event: e, Count: 1})
		}
		n.entries = append(n.entries, Entry{Label: ej.Label, Event: e, Time: ej.Time})
	}
	if len(n.groups) > 0 {
		tot, _, _ := n.total(nil)
		if err := tot.Validate(); err != nil {
			return fmt.Errorf("accountant: ledger: %w", err)
		}
		if n.spent, err = acc.Epsilon(tot, n.budget.Delta); err != nil {
			return fmt.Errorf("accountant: ledger: %w", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.budget, l.acc, l.entries, l.keys, l.groups, l.spent = n.budget, n.acc, n.entries, n.keys, n.groups, n.spent
	if l.now == nil {
		l.now = time.Now
	}
	return nil
}

// WriteTo writes the ledger's JSON form (see MarshalJSON) to w, implementing
// io.WriterTo.
func (l *Ledger) WriteTo(w io.Writer) (int64, error) {
	b, err := l.MarshalJSON()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(append(b, '\n'))
	return int64(n), err
}

// ReadLedger reads a ledger written by WriteTo, restoring its accountant from
// the registry; see UnmarshalJSON.
func ReadLedger(r io.Reader) (*Ledger, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("accountant: ledger: %w", err)
	}
	l := new(Ledger)
	if err := l.UnmarshalJSON(b); err != nil { // errors match ErrFormat or are *ParamError
		return nil, err
	}
	return l, nil
}
