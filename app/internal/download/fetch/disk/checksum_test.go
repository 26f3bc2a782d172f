package disk

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/minio/crc64nvme"
)

// expectedOf computes the checksum of data independently of the Verifier: the standard library's (or minio's) one-shot
// functions.
func expectedOf(a Algorithm, data []byte) Expected {
	var sum []byte
	switch a {
	case CRC32:
		sum = binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(data))
	case CRC32C:
		sum = binary.BigEndian.AppendUint32(nil, crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	case CRC64NVME:
		sum = binary.BigEndian.AppendUint64(nil, crc64nvme.Checksum(data))
	case SHA1:
		s := sha1.Sum(data)
		sum = s[:]
	case SHA256:
		s := sha256.Sum256(data)
		sum = s[:]
	case MD5ETag:
		s := md5.Sum(data)
		sum = s[:]
	}
	return Expected{Algorithm: a, Sum: sum}
}

func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 1<<16+123)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	for a, k := range crcKinds {
		for _, cut := range []int{0, 1, 7, 64, 1000, len(data) - 1, len(data)} {
			c1 := k.update(0, data[:cut])
			c2 := k.update(0, data[cut:])
			got := k.sum(k.combine(c1, c2, int64(len(data)-cut)))
			if want := expectedOf(a, data).Sum; string(got) != string(want) {
				t.Errorf("%s: combine at %d = %x, want %x", a, cut, got, want)
			}
		}
	}
}

// TestKnownAnswers pins the algorithms to S3's published values for "hello".
func TestKnownAnswers(t *testing.T) {
	for a, want := range map[Algorithm]string{
		CRC32:  "crc32:NhCmhg==",
		CRC32C: "crc32c:mnG7TA==",
	} {
		if got := expectedOf(a, []byte("hello")).String(); got != want {
			t.Errorf("%s of hello = %s, want %s", a, got, want)
		}
	}
}

// TestVerifier writes data through a Verifier the way a ranged download does (ranges in parallel, in pieces, one
// retried from its start) and checks the outcome for every algorithm, and that one flipped byte fails.
func TestVerifier(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 5<<20+77)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	const part = 1 << 20
	for _, a := range []Algorithm{CRC32, CRC32C, CRC64NVME, SHA1, SHA256, MD5ETag, SizeOnly} {
		for _, corrupt := range []bool{false, true} {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			v := NewVerifier(f, f, expectedOf(a, data), int64(len(data)))
			var wg sync.WaitGroup
			for start := 0; start < len(data); start += part {
				end := min(start+part, len(data))
				wg.Go(func() {
					piece := 32 << 10
					write := func(upto int) {
						for off := start; off < upto; off += piece {
							p := append([]byte(nil), data[off:min(off+piece, upto)]...)
							if corrupt && off == start && start == 2*part {
								p[3] ^= 1
							}
							if _, err := v.WriteAt(p, int64(off)); err != nil {
								t.Error(err)
							}
						}
					}
					if start == 0 { // a retried range: half, then all again from its start
						write(start + part/2)
					}
					write(end)
				})
			}
			wg.Wait()
			if _, isCRC := crcKinds[a]; isCRC {
				// The retry restarted its run: the runs still tile the file and answer without reading it.
				if ok, err := v.FromStream(); !ok || (err != nil) != corrupt {
					t.Errorf("%s: from the stream: %v, %v", a, ok, err)
				}
			}
			err = v.Verify()
			switch {
			case a == SizeOnly && err != nil:
				t.Errorf("%s: %v", a, err)
			case a != SizeOnly && !corrupt && err != nil:
				t.Errorf("%s: %v", a, err)
			case a != SizeOnly && corrupt && !errors.Is(err, ErrMismatch):
				t.Errorf("%s: corrupted file verified: %v", a, err)
			}
			f.Close()
		}
	}
}

func TestVerifyFileSize(t *testing.T) {
	f, _ := os.Create(filepath.Join(t.TempDir(), "f"))
	defer f.Close()
	v := NewVerifier(f, f, expectedOf(CRC32C, []byte("hello")), 5)
	if _, err := v.WriteAt([]byte("hell"), 0); err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(); !errors.Is(err, ErrMismatch) {
		t.Errorf("short file verified: %v", err)
	}
	if _, err := v.WriteAt([]byte("o!"), 4); err == nil {
		t.Error("write beyond the object's size accepted")
	}
}

// FromStream answers from the bytes as written when they allow it, and says so when the file must be read: pieces out
// of order for an in-order digest, or overlapping ones for a CRC.
func TestVerifierFromStream(t *testing.T) {
	data := make([]byte, 3000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(v *Verifier, pieces ...[2]int) {
		for _, p := range pieces {
			if _, err := v.WriteAt(data[p[0]:p[1]], int64(p[0])); err != nil {
				t.Fatal(err)
			}
		}
	}
	inOrder := [][2]int{{0, 1000}, {1000, 3000}}
	outOfOrder := [][2]int{{1000, 3000}, {0, 1000}}
	overlapping := [][2]int{{0, 2000}, {1000, 3000}}
	for _, c := range []struct {
		algo   Algorithm
		pieces [][2]int
		ok     bool
	}{
		{CRC32C, inOrder, true},
		{CRC32C, outOfOrder, true}, // runs combine in any order
		{CRC32C, overlapping, false},
		{SHA256, inOrder, true},
		{SHA256, outOfOrder, false},
		{SizeOnly, inOrder, true},
		{SizeOnly, overlapping, false}, // more bytes written than the file has: its size tells
	} {
		for _, damaged := range []bool{false, true} {
			exp := expectedOf(c.algo, data)
			if damaged && c.algo != SizeOnly {
				exp.Sum = append([]byte(nil), exp.Sum...)
				exp.Sum[0] ^= 1
			}
			v := NewVerifier(f, f, exp, int64(len(data)))
			write(v, c.pieces...)
			ok, err := v.FromStream()
			if ok != c.ok {
				t.Errorf("%s %v: ok %v, want %v", c.algo, c.pieces, ok, c.ok)
			}
			if wantErr := ok && damaged && c.algo != SizeOnly; (err != nil) != wantErr || (err != nil && !errors.Is(err, ErrMismatch)) {
				t.Errorf("%s %v damaged=%v: %v", c.algo, c.pieces, damaged, err)
			}
		}
	}
}
