package features

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// A small decoder of tf.train.Example (tensorflow/core/example/example.proto,
// feature.proto) over protowire:
//
//	message Example  { Features features = 1; }
//	message Features { map<string, Feature> feature = 1; }   // entries: key = 1, value = 2
//	message Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
//	message FloatList { repeated float value = 1 [packed = true]; }
//	message Int64List { repeated int64 value = 1 [packed = true]; }
//
// Protobuf semantics are followed where they matter: a repeated occurrence
// of a message field merges into it (so the parts of a split Features or
// Feature are read in order), a map key seen twice keeps its last value, a
// oneof keeps its last member, repeated scalars may be packed or not, and
// unknown fields are skipped.

// Feature kinds (the oneof field numbers).
const (
	kindNone  = 0
	kindBytes = 1
	kindFloat = 2
	kindInt64 = 3
)

// exampleDecoder decodes the two features of interest, reusing its buffers.
type exampleDecoder struct {
	feature, label string // feature names

	xParts, yParts [][]byte // serialized Feature messages (merged in order)

	x   []float32 // decoded features
	y   float64   // decoded label, if yOK
	yOK bool      // the label is an integer in [0, MaxLabel]
	ys  []int64
	yf  []float32
}

// decode decodes a serialized Example; with labels it requires the label
// feature to hold exactly one value.
func (d *exampleDecoder) decode(ex []byte, labels bool) error {
	d.xParts, d.yParts = d.xParts[:0], d.yParts[:0]
	xSeen, ySeen := false, false
	err := walk(ex, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		return walk(v, func(num protowire.Number, typ protowire.Type, entry []byte) error {
			if num != 1 || typ != protowire.BytesType {
				return nil
			}
			var key []byte
			var parts [][]byte
			keyNum := 0
			err := walk(entry, func(num protowire.Number, typ protowire.Type, v []byte) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					key = v
					keyNum++
				case num == 2 && typ == protowire.BytesType:
					parts = append(parts, v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			switch string(key) {
			case d.feature:
				d.xParts, xSeen = append(d.xParts[:0], parts...), true
			case d.label:
				d.yParts, ySeen = append(d.yParts[:0], parts...), true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	if !xSeen {
		return wrapf(ErrFormat, "no feature %q (set Options.Features)", d.feature)
	}
	kind, err := d.values(d.xParts, &d.yf, &d.ys)
	if err != nil {
		return err
	}
	switch kind {
	case kindFloat:
		d.x = append(d.x[:0], d.yf...)
	case kindInt64:
		return wrapf(ErrFormat, "feature %q is an int64_list, want a float_list", d.feature)
	default:
		return wrapf(ErrFormat, "feature %q is not a float_list", d.feature)
	}
	if !labels {
		return nil
	}
	if !ySeen {
		return wrapf(ErrFormat, "no feature %q (set Options.Labels, or Options.Unlabeled)", d.label)
	}
	kind, err = d.values(d.yParts, &d.yf, &d.ys)
	if err != nil {
		return err
	}
	switch {
	case kind == kindInt64 && len(d.ys) == 1:
		d.y, d.yOK = float64(d.ys[0]), d.ys[0] >= 0 && d.ys[0] <= MaxLabel
	case kind == kindFloat && len(d.yf) == 1:
		d.y = float64(d.yf[0])
		d.yOK = d.y >= 0 && d.y <= MaxLabel && d.y == math.Trunc(d.y)
	default:
		return wrapf(ErrFormat, "feature %q does not hold exactly one integer label", d.label)
	}
	return nil
}

// values decodes the merged Feature messages in parts; the values go to
// *fs (float_list) or *is (int64_list), whichever the returned kind says.
func (d *exampleDecoder) values(parts [][]byte, fs *[]float32, is *[]int64) (int, error) {
	kind := kindNone
	*fs, *is = (*fs)[:0], (*is)[:0]
	for _, p := range parts {
		err := walk(p, func(num protowire.Number, typ protowire.Type, v []byte) error {
			if typ != protowire.BytesType || num < kindBytes || num > kindInt64 {
				return nil
			}
			if int(num) != kind { // a new oneof member replaces the old
				kind = int(num)
				*fs, *is = (*fs)[:0], (*is)[:0]
			}
			switch kind {
			case kindFloat:
				return walk(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if num != 1 {
						return nil
					}
					switch typ {
					case protowire.Fixed32Type:
						*fs = append(*fs, math.Float32frombits(binary.LittleEndian.Uint32(v)))
					case protowire.BytesType:
						if len(v)%4 != 0 {
							return wrapf(ErrFormat, "packed float_list of %d bytes", len(v))
						}
						for k := 0; k < len(v); k += 4 {
							*fs = append(*fs, math.Float32frombits(binary.LittleEndian.Uint32(v[k:])))
						}
					}
					return nil
				})
			case kindInt64:
				return walk(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if num != 1 {
						return nil
					}
					switch typ {
					case protowire.VarintType:
						x, _ := protowire.ConsumeVarint(v)
						*is = append(*is, int64(x))
					case protowire.BytesType:
						for len(v) > 0 {
							x, n := protowire.ConsumeVarint(v)
							if n < 0 {
								return wrapf(ErrFormat, "packed int64_list: %v", protowire.ParseError(n))
							}
							*is = append(*is, int64(x))
							v = v[n:]
						}
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return kindNone, err
		}
	}
	return kind, nil
}

// walk calls f for each field of the message b: its number, wire type and
// value bytes (the payload for BytesType, the raw encoding for the others).
// Groups are skipped. Malformed wire data is ErrFormat.
func walk(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wrapf(ErrFormat, "not a tf.train.Example: %v", protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return wrapf(ErrFormat, "not a tf.train.Example: %v", protowire.ParseError(m))
		}
		v := b[:m]
		if typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(v)
		}
		if err := f(num, typ, v); err != nil {
			return err
		}
		b = b[m:]
	}
	return nil
}

// appendExample appends the encoding of a tf.train.Example with a
// float_list feature fn = x and, if label ≥ 0, an int64_list feature
// ln = [label]. Keys are written in sorted order, as TensorFlow does.
func appendExample(b []byte, fn string, x []float32, ln string, label int) []byte {
	floatList := protowire.SizeTag(1) + protowire.SizeBytes(4*len(x))
	xFeature := protowire.SizeTag(kindFloat) + protowire.SizeBytes(floatList)
	xEntry := protowire.SizeTag(1) + protowire.SizeBytes(len(fn)) + protowire.SizeTag(2) + protowire.SizeBytes(xFeature)
	features := protowire.SizeTag(1) + protowire.SizeBytes(xEntry)
	var yEntry, yFeature, intList int
	if label >= 0 {
		intList = protowire.SizeTag(1) + protowire.SizeBytes(protowire.SizeVarint(uint64(label)))
		yFeature = protowire.SizeTag(kindInt64) + protowire.SizeBytes(intList)
		yEntry = protowire.SizeTag(1) + protowire.SizeBytes(len(ln)) + protowire.SizeTag(2) + protowire.SizeBytes(yFeature)
		features += protowire.SizeTag(1) + protowire.SizeBytes(yEntry)
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType) // Example.features
	b = protowire.AppendVarint(b, uint64(features))
	appendX := func(b []byte) []byte {
		b = protowire.AppendTag(b, 1, protowire.BytesType) // Features.feature entry
		b = protowire.AppendVarint(b, uint64(xEntry))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, fn)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(xFeature))
		b = protowire.AppendTag(b, kindFloat, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(floatList))
		b = protowire.AppendTag(b, 1, protowire.BytesType) // packed values
		b = protowire.AppendVarint(b, uint64(4*len(x)))
		for _, v := range x {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	appendY := func(b []byte) []byte {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(yEntry))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, ln)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(yFeature))
		b = protowire.AppendTag(b, kindInt64, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(intList))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(protowire.SizeVarint(uint64(label))))
		return protowire.AppendVarint(b, uint64(label))
	}
	switch {
	case label < 0:
		return appendX(b)
	case ln < fn:
		return appendX(appendY(b))
	default:
		return appendY(appendX(b))
	}
}
