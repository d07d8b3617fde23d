//go:build spark

package main

// With the build tag spark: the Spark runner, through a Beam job server. The default
// build has only the local runners, and none of these dependencies.

import (
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/spark"
)

func init() { builtIn["spark"] = true }
