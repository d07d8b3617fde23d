package accountant

// An Accountant turns an Event into (ε, δ) guarantees. Accountants are
// stateless values: composition is expressed by the event (Composed, Repeated),
// and a Ledger keeps the history.
type Accountant interface {
	// Name is a short identifier: "exact", "rdp" or "pld".
	Name() string
	// Epsilon returns an ε such that e is (ε, delta)-DP. It never understates
	// the true ε. It returns an error wrapping ErrUnsupported for events the
	// accountant cannot handle.
	Epsilon(e Event, delta float64) (float64, error)
	// Delta returns a δ such that e is (epsilon, δ)-DP, never understating it.
	Delta(e Event, epsilon float64) (float64, error)
}
