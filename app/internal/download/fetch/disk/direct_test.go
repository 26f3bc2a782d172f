package disk

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/iotest"
)

// TestDirectWriter writes a file the way ranged downloads do — ranges in parallel, each in order, in uneven pieces, one
// range retried from its start half-way, one range not starting on a block — and checks the bytes on disk against the
// source.
func TestDirectWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const part = 1<<20 + 3*directBlock             // several buffers' worth, not a multiple of directBuf
	src := make([]byte, 4*part+3*directBlock+1234) // the last range ends off a block
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	path, w := newDirectFile(t)

	pieces := func(from, to int64, seed uint64) [][2]int64 {
		r := rand.New(rand.NewPCG(seed, 1))
		var out [][2]int64
		for at := from; at < to; {
			n := min(int64(1+r.IntN(40<<10)), to-at)
			out = append(out, [2]int64{at, at + n})
			at += n
		}
		return out
	}
	write := func(p [2]int64) {
		if n, err := w.WriteAt(src[p[0]:p[1]], p[0]); err != nil || n != int(p[1]-p[0]) {
			t.Errorf("WriteAt %v: %d, %v", p, n, err)
		}
	}
	var wg sync.WaitGroup
	for i := range int64(5) { // the fifth range: three blocks and 1,234 bytes
		from, to := i*part, min((i+1)*part, int64(len(src)))
		wg.Go(func() {
			ps := pieces(from, to, uint64(i))
			if i == 1 { // cut half-way, retried from the start
				for _, p := range ps[:len(ps)/2] {
					write(p)
				}
			}
			if i == 2 { // a range that does not start on a block: its first byte comes plainly
				write([2]int64{from, from + 1})
				for _, p := range pieces(from+1, to, 99) {
					write(p)
				}
				return
			}
			for _, p := range ps {
				write(p)
			}
		})
	}
	wg.Wait()
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		i := 0
		for i < min(len(got), len(src)) && got[i] == src[i] {
			i++
		}
		t.Fatalf("file differs from the source: %d bytes vs %d, first difference at %d", len(got), len(src), i)
	}
}

// A small file read straight into the O_DIRECT buffers: pieces of every size the network may hand out, each seen once
// at its offset, the bytes on disk those of the source; more bytes than the object has is an error.
func TestDirectReadFrom(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	src := make([]byte, 2*directBuf+directBlock+777) // whole buffers, a whole block, a partial one
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name string
		r    func() io.Reader
		max  int64
		fail bool
	}{
		{"one byte at a time", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(src)) }, int64(len(src)), false},
		{"half reads", func() io.Reader { return iotest.HalfReader(bytes.NewReader(src)) }, int64(len(src)), false},
		{"data with EOF", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(src)) }, int64(len(src)), false},
		{"more than the object", func() io.Reader { return bytes.NewReader(src) }, int64(len(src)) - 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, w := newDirectFile(t)
			seen := make([]byte, len(src))
			var next int64
			n, err := w.readFrom(tc.r(), 0, tc.max, func(p []byte, off int64) {
				if off != next {
					t.Fatalf("piece at %d, want %d", off, next)
				}
				copy(seen[off:], p)
				next += int64(len(p))
			})
			ferr := w.Finish()
			if tc.fail {
				if err == nil {
					t.Fatalf("read %d bytes of a source longer than %d without an error", n, tc.max)
				}
				return
			}
			if err != nil || ferr != nil || n != int64(len(src)) {
				t.Fatalf("readFrom = %d, %v; finish %v", n, err, ferr)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, src) || !bytes.Equal(seen, src) {
				t.Fatalf("on disk equal: %v, seen equal: %v", bytes.Equal(got, src), bytes.Equal(seen, src))
			}
		})
	}
}

// newDirectFile creates a temp file and a Direct over it, as write does; it skips the test where the file system
// refuses O_DIRECT.
func newDirectFile(t *testing.T) (path string, w *Direct) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	plain, err := root.OpenFile("f.part", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	if w, err = OpenDirect(root, "f.part", plain); err != nil {
		t.Skipf("O_DIRECT refused by the file system of %s: %v", dir, err)
	}
	return filepath.Join(dir, "f.part"), w
}

func TestAlignedBuffer(t *testing.T) {
	for range 10 {
		b := alignedBuffer(directBuf)
		if len(*b) != directBuf || cap(*b) != directBuf {
			t.Fatalf("len %d cap %d", len(*b), cap(*b))
		}
		if addr := uintptrOf(*b); addr%directBlock != 0 {
			t.Fatalf("buffer at %#x is not %d-aligned", addr, directBlock)
		}
	}
}
