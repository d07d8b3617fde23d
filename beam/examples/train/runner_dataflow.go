//go:build dataflow

package main

// With the build tag dataflow: the Dataflow runner and the gs:// filesystem. The default
// build has only the local runners, and none of these dependencies.

import (
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs" // gs:// inputs and temp_dir
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
)

func init() { builtIn["dataflow"] = true }
