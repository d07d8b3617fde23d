// Package badinput holds the table of bad-input cases of dpopt: every kind of
// bad argument, parameter, data set, feature file and command line the
// library and the dpopt command must reject, each with the error it must
// get (an errors.Is sentinel or an errors.As type), across the exported API
// of linalg, dp, accountant, losses, optim and features and the dpopt
// command. The package has no code; the table is in badinput_test.go.
//
// Every case checks that the call does not panic, returns a non-nil error of
// the stated kind, a nil (or zero, never NaN) result and, where a Ledger is
// involved, charges nothing. Every command-line case checks the exit status
// (2 for bad flags or values, 1 for bad data), exactly one line on stderr,
// nothing on stdout and no file left behind.
package badinput
