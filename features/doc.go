// Package features reads, streams and writes the feature files that dpopt
// trains on: one row of float32 features per example, with an integer class
// label. It reads
//
//   - NumPy .npy (features, with an optional second .npy of labels) and .npz
//     archives (arrays "features" or "x", "labels" or "y"; names settable),
//     as written by numpy.save, numpy.savez and numpy.savez_compressed:
//     features float32 or float64, labels of any integer dtype or floats
//     holding integers;
//   - TFRecord files of tf.train.Example records with a float_list feature
//     "repr" and an int64_list feature "label" — the layout read by the
//     dp_transfer code of Mehta, Krichene, Thakurta, Kurakin and Cutkosky,
//     "Differentially Private Image Classification from Features"
//     (arXiv 2211.13403) — with every record's length and data CRC32C
//     checked, from one file or sharded ("train.tfr*");
//   - CSV files of numbers, with or without a header, the label in a column
//     chosen by index or name;
//
// and writes .npz and TFRecord files.
//
// Open returns a Stream that delivers row blocks in bounded memory, so that
// sufficient statistics (linalg.Stats) or full-batch gradients can be
// computed over files larger than memory; Load reads a whole file. Both
// choose the format from the file name unless Options.Format says otherwise.
//
// # Bad files
//
// A feature file is input from outside: every malformed file gets an error,
// never a panic, and no header can make a reader allocate more than the
// bytes on disk justify (a .npy header claiming 10¹² rows is checked against
// the file size before anything is allocated). Errors wrap ErrFormat,
// ErrChecksum or ErrTruncated for the file's structure and linalg.ErrShape,
// ErrEmpty, ErrLabel or ErrNonFinite for its content: labels must be
// integers in [0, MaxLabel], features finite and at most linalg.MaxAbs in
// magnitude. Writers write to a temporary file and rename it, so a failed
// write leaves nothing half-written.
//
// # Privacy
//
// Reading costs no privacy: nothing is released. The transformations here —
// Normalize, the RandomReLU feature map, and dp.ClipRows (clip before any
// release; Map applies it to a stream) — act on each row by itself with no
// parameter learnt from the data, so they cost no privacy either: under
// add/remove adjacency, the transformed data sets of two neighbouring data
// sets are again neighbours. Statistics computed afterwards (Gram, class
// sums, gradients) become private only when released through the mechanisms
// of package dp and accounted in package accountant.
//
// # Concurrency
//
// Streams and writers are not safe for concurrent use; distinct ones may be
// used from distinct goroutines.
package features
