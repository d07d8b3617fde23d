package accountant

import (
	"fmt"
	"slices"
	"sync"
)

// The registry maps accountant names to accountants, so that a Ledger saved
// to JSON (which records its accountant by name) can be restored, and so that
// Compare can list every accountant. GDP ("exact") and RDP ("rdp") are
// registered by this package; other accountants register themselves from an
// init function:
//
//	func init() { accountant.Register(PLD{}) }
var registry struct {
	sync.RWMutex
	m map[string]Accountant
}

func init() {
	Register(GDP{})
	Register(RDP{})
}

// Register makes acc available under acc.Name() to AccountantByName,
// ReadLedger and Compare. Accountants are stateless values, so the registered
// value is shared by every user. Register is meant for init functions: it
// panics if acc is nil, its name is empty, or the name is already taken, as
// database/sql.Register does.
func Register(acc Accountant) {
	if acc == nil {
		panic("accountant: Register of a nil Accountant")
	}
	name := acc.Name()
	if name == "" {
		panic("accountant: Register of an Accountant with an empty name")
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = make(map[string]Accountant)
	}
	if _, dup := registry.m[name]; dup {
		panic("accountant: Register called twice for " + name)
	}
	registry.m[name] = acc
}

// AccountantByName returns the accountant registered under name ("exact",
// "rdp", "pld", …), or an error if there is none.
func AccountantByName(name string) (Accountant, error) {
	registry.RLock()
	acc, ok := registry.m[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("accountant: no accountant registered as %q: %w", name, ErrUnknownAccountant)
	}
	return acc, nil
}

// preferredOrder lists well-known accountants tightest first.
var preferredOrder = []string{"exact", "pld", "rdp"}

// Accountants returns the names of all registered accountants: "exact",
// "pld", "rdp" first (those registered), then the others in lexical order.
func Accountants() []string {
	registry.RLock()
	defer registry.RUnlock()
	var names, rest []string
	for _, n := range preferredOrder {
		if _, ok := registry.m[n]; ok {
			names = append(names, n)
		}
	}
	for n := range registry.m {
		if !slices.Contains(preferredOrder, n) {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	return append(names, rest...)
}
