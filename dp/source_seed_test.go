package dp_test

import (
	"testing"

	"github.com/dpopt/dpopt/dp"
)

func TestSeededSourceSaysItsSeed(t *testing.T) {
	s, ok := dp.NewSeededSource(42).(dp.Seeded)
	if !ok || s.Seed() != 42 {
		t.Fatalf("NewSeededSource(42) is not a dp.Seeded with seed 42")
	}
	if _, ok := dp.NewSecureSource().(dp.Seeded); ok {
		t.Fatal("a secure source claims a seed: a report would call it replayable")
	}
	if _, ok := dp.Harden(dp.NewSeededSource(1)).(dp.Seeded); ok {
		t.Fatal("a hardened source exposes the seed of its inner source")
	}
}
