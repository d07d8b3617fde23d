//go:build flink

package main

// With the build tag flink: the Flink runner, through a Beam job server. The default
// build has only the local runners, and none of these dependencies.

import (
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/flink"
)

func init() { builtIn["flink"] = true }
