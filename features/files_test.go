package features

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// npyFile builds a .npy file byte by byte: magic, version major.0, header
// length, the dict padded with spaces to a multiple of 64 and a newline, then
// data.
func npyFile(major byte, dict string, data []byte) []byte {
	b := []byte("\x93NUMPY")
	b = append(b, major, 0)
	prefix := 10
	if major != 1 {
		prefix = 12
	}
	h := []byte(dict)
	for (prefix+len(h)+1)%64 != 0 {
		h = append(h, ' ')
	}
	h = append(h, '\n')
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(h)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(h)))
	}
	b = append(b, h...)
	return append(b, data...)
}

// npyDict returns a header dict for a C-ordered array.
func npyDict(descr, shape string) string {
	return fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
}

// f32s and f64s return little-endian encodings.
func f32s(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func f64s(v ...float64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

func i64s(v ...int64) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return b
}

// zipFile builds a zip archive of stored (uncompressed) entries, in order.
func zipFile(t testing.TB, entries ...any) []byte {
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for i := 0; i < len(entries); i += 2 {
		w, err := z.CreateHeader(&zip.FileHeader{Name: entries[i].(string), Method: zip.Store})
		require.NoError(t, err)
		_, err = w.Write(entries[i+1].([]byte))
		require.NoError(t, err)
	}
	require.NoError(t, z.Close())
	return b.Bytes()
}

// tfrFrame frames data as one TFRecord record, computing the masked CRC32C
// independently of maskedCRC.
func tfrFrame(data []byte) []byte {
	mask := func(b []byte) uint32 {
		// CRC-32C (Castagnoli), reflected polynomial 0x82f63b78, bit by bit.
		c := ^uint32(0)
		for _, x := range b {
			c ^= uint32(x)
			for range 8 {
				if c&1 != 0 {
					c = c>>1 ^ 0x82f63b78
				} else {
					c >>= 1
				}
			}
		}
		c = ^c
		return (c>>15 | c<<17) + 0xa282ead8
	}
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint32(b, mask(b[:8]))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, mask(data))
}

// msg returns a length-delimited protobuf field: tag byte, varint length,
// payload (payloads here are < 16 KiB).
func msg(tag byte, parts ...[]byte) []byte {
	p := bytes.Join(parts, nil)
	b := []byte{tag}
	n := len(p)
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	b = append(b, byte(n))
	return append(b, p...)
}

// Hand-encoded tf.train.Example pieces (field numbers of example.proto and
// feature.proto; tag = field<<3 | wire type).
const (
	tagExampleFeatures = 0x0a // Example.features = 1, bytes
	tagFeaturesEntry   = 0x0a // Features.feature = 1 (map entry), bytes
	tagEntryKey        = 0x0a // key = 1, bytes
	tagEntryValue      = 0x12 // value = 2, bytes
	tagFloatList       = 0x12 // Feature.float_list = 2, bytes
	tagInt64List       = 0x1a // Feature.int64_list = 3, bytes
	tagBytesList       = 0x0a // Feature.bytes_list = 1, bytes
	tagPacked          = 0x0a // value = 1, packed (bytes)
	tagFixed32         = 0x0d // value = 1, fixed32 (unpacked float)
	tagVarint          = 0x08 // value = 1, varint (unpacked int64)
)

// entry returns a Features map entry key → feature.
func entry(key string, feature []byte) []byte {
	return msg(tagFeaturesEntry, msg(tagEntryKey, []byte(key)), msg(tagEntryValue, feature))
}

// floatFeature returns a Feature with a packed float_list.
func floatFeature(v ...float32) []byte { return msg(tagFloatList, msg(tagPacked, f32s(v...))) }

// floatFeatureUnpacked returns a Feature with an unpacked float_list.
func floatFeatureUnpacked(v ...float32) []byte {
	var p []byte
	for _, x := range v {
		p = append(append(p, tagFixed32), f32s(x)...)
	}
	return msg(tagFloatList, p)
}

// intFeature returns a Feature with a packed int64_list (values < 128).
func intFeature(v ...byte) []byte { return msg(tagInt64List, msg(tagPacked, v)) }

// intFeatureUnpacked returns a Feature with an unpacked int64_list.
func intFeatureUnpacked(v ...byte) []byte {
	var p []byte
	for _, x := range v {
		p = append(p, tagVarint, x)
	}
	return msg(tagInt64List, p)
}

// example returns a serialized Example holding the given entries.
func example(entries ...[]byte) []byte {
	return msg(tagExampleFeatures, entries...)
}

// writeFile writes b to name in dir and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}
