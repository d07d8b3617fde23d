//go:build linux

package linalg

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// vmFlags returns the VmFlags of the mapping of /proc/self/smaps that holds
// addr, and whether one does.
func vmFlags(t *testing.T, addr uintptr) ([]string, bool) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				in = uint64(addr) >= a && uint64(addr) < b
				continue
			}
		}
		if in && fields[0] == "VmFlags:" {
			return fields[1:], true
		}
	}
	return nil, false
}

// TestMakeFloat32: a large allocation is zeroed, of the asked length and
// capacity, and its whole 2 MiB pages carry the huge-page advice (VmFlags
// "hg"); a small one does not ask for it.
func TestMakeFloat32(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skipf("a kernel without transparent huge pages: %v", err)
	}
	s := MakeFloat32(16 << 20) // 64 MiB
	if len(s) != 16<<20 || cap(s) != 16<<20 {
		t.Fatalf("len %d cap %d, want %d", len(s), cap(s), 16<<20)
	}
	for i := 0; i < len(s); i += 4099 {
		if s[i] != 0 {
			t.Fatalf("s[%d] = %v, want 0", i, s[i])
		}
	}
	mid := uintptr(unsafe.Pointer(&s[len(s)/2]))
	flags, ok := vmFlags(t, mid)
	if !ok {
		t.Fatal("the allocation is in no mapping of /proc/self/smaps")
	}
	hg := false
	for _, f := range flags {
		hg = hg || f == "hg"
	}
	if !hg {
		t.Errorf("VmFlags %v of the allocation lack hg (MADV_HUGEPAGE)", flags)
	}
	if n := len(MakeFloat32(100)); n != 100 {
		t.Errorf("small allocation of length %d, want 100", n)
	}
}
