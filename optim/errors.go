package optim

import "errors"

// ErrNonPrivate is returned, wrapped, by Plan for a non-private solver
// (Privacy.Epsilon = +Inf), whose run has no finite privacy event, and by Solve
// when such a run is given a Ledger with a finite budget.
var ErrNonPrivate = errors.New("optim: non-private run has no finite privacy guarantee")

// ErrTooLarge is returned, wrapped, when a problem's shape would need more
// memory than the solver allows (for example DP-Newton's K per-class d×d Hessians).
var ErrTooLarge = errors.New("optim: problem too large for this solver")
