package fetch

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"sync"

	"github.com/minio/crc64nvme"
)

// Algorithm names a checksum a file is verified with: one of the object's
// full-object S3 checksums, or the MD5 of a single-part ETag.
type algorithm string

const (
	algoCRC32     algorithm = "crc32"
	algoCRC32C    algorithm = "crc32c"
	algoCRC64NVME algorithm = "crc64nvme"
	algoSHA1      algorithm = "sha1"
	algoSHA256    algorithm = "sha256"
	algoMD5ETag   algorithm = "md5" // the ETag of a single-part, non-KMS object
	sizeOnly      algorithm = ""    // nothing to verify but the size (multipart object without a full-object checksum)
)

// expected is what a downloaded file must hash to.
type expected struct {
	algorithm algorithm
	Sum       []byte // raw digest, big-endian for CRCs as S3 sends them
}

// String is "algorithm:value" as S3 shows it (base64, hex for MD5), or
// "size-only".
func (e expected) String() string {
	switch e.algorithm {
	case sizeOnly:
		return "size-only"
	case algoMD5ETag:
		return "md5:" + hex.EncodeToString(e.Sum)
	}
	return string(e.algorithm) + ":" + base64.StdEncoding.EncodeToString(e.Sum)
}

// crcKind describes a reflected CRC whose pieces can be combined: the data
// of a ranged download arrives out of order, and CRCs of its runs are
// joined without reading the file again (zlib's crc32_combine, generalised).
type crcKind struct {
	width  int    // bits
	poly   uint64 // reflected polynomial
	update func(crc uint64, p []byte) uint64
}

var (
	tabCastagnoli = crc32.MakeTable(crc32.Castagnoli)
	crcKinds      = map[algorithm]*crcKind{
		algoCRC32:     {32, 0xedb88320, func(c uint64, p []byte) uint64 { return uint64(crc32.Update(uint32(c), crc32.IEEETable, p)) }},
		algoCRC32C:    {32, 0x82f63b78, func(c uint64, p []byte) uint64 { return uint64(crc32.Update(uint32(c), tabCastagnoli, p)) }},
		algoCRC64NVME: {64, crc64nvme.NVME, crc64nvme.Update},
	}
)

// sum returns crc as S3 writes it: big-endian bytes.
func (k *crcKind) sum(crc uint64) []byte {
	if k.width == 32 {
		return binary.BigEndian.AppendUint32(nil, uint32(crc))
	}
	return binary.BigEndian.AppendUint64(nil, crc)
}

// combine returns the CRC of A‖B from crc1 = CRC(A), crc2 = CRC(B) and
// len2 = len(B), in O(log len2) GF(2) matrix steps.
func (k *crcKind) combine(crc1, crc2 uint64, len2 int64) uint64 {
	if crc1 == 0 { // A is empty (or sums to 0): shifting 0 gives 0; the common case of one run
		return crc2
	}
	if len2 <= 0 {
		return crc1
	}
	even := make([]uint64, k.width) // operator for 2^n zero bits, n even
	odd := make([]uint64, k.width)  // n odd
	odd[0] = k.poly                 // one zero bit
	row := uint64(1)
	for n := 1; n < k.width; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(even, odd) // two zero bits
	gf2Square(odd, even) // four
	for {
		gf2Square(even, odd) // first pass: one zero byte
		if len2&1 != 0 {
			crc1 = gf2Times(even, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
		gf2Square(odd, even)
		if len2&1 != 0 {
			crc1 = gf2Times(odd, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
	}
	return crc1 ^ crc2
}

func gf2Times(mat []uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat []uint64) {
	for n := range mat {
		square[n] = gf2Times(mat, mat[n])
	}
}

func newHash(a algorithm) hash.Hash {
	switch a {
	case algoCRC32:
		return crc32.NewIEEE()
	case algoCRC32C:
		return crc32.New(tabCastagnoli)
	case algoCRC64NVME:
		return crc64nvme.New()
	case algoSHA1:
		return sha1.New()
	case algoSHA256:
		return sha256.New()
	case algoMD5ETag:
		return md5.New()
	}
	return nil
}

// errMismatch means the bytes on disk are not the object's.
var errMismatch = errors.New("checksum mismatch")

// verifier is the io.WriterAt a download writes through: it writes to the
// temp file and hashes on the way, so that verifying costs no second read
// of the file in the common cases.
//
// CRCs are kept per run of contiguous writes (each ranged GET writes one
// run, in order) and combined at the end. Other digests can only be fed in
// file order: the bytes that arrive in order are hashed as they come, the
// rest is read back from the (page-cached) file by Verify.
type verifier struct {
	f    *os.File    // the file, for its size and reading back
	w    io.WriterAt // where writes go: f, or f through a directWriter
	exp  expected
	size int64
	crc  *crcKind

	runs runTable[uint64] // with a CRC: the CRC of each run

	mu      sync.Mutex
	broken  bool      // writes overlapped in a way runs cannot describe: hash the file
	h       hash.Hash // in-order digest of [0, next)
	next    int64
	written int64
}

func newVerifier(f *os.File, w io.WriterAt, exp expected, size int64) *verifier {
	v := &verifier{f: f, w: w, exp: exp, size: size, crc: crcKinds[exp.algorithm]}
	if v.crc == nil && exp.algorithm != sizeOnly {
		v.h = newHash(exp.algorithm)
	}
	return v
}

// WriteAt writes p at off in the file and accounts for it.
func (v *verifier) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > v.size {
		return 0, fmt.Errorf("write of %d bytes at %d is beyond the object's %d bytes (the object changed?)", len(p), off, v.size)
	}
	n, err := v.w.WriteAt(p, off)
	v.account(p[:n], off)
	return n, err
}

// ReadFromAt reads src into the file from off and accounts for it, calling
// seen with the size of each piece. Written with O_DIRECT, the pieces are
// read straight into the aligned buffers that go to the disk.
func (v *verifier) ReadFromAt(src io.Reader, off int64, seen func(int)) (int64, error) {
	if dw, ok := v.w.(*directWriter); ok && off%directBlock == 0 && off >= 0 && off <= v.size {
		return dw.readFrom(src, off, v.size-off, func(p []byte, at int64) {
			v.account(p, at)
			seen(len(p))
		})
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	var n int64
	for {
		k, err := src.Read(*buf)
		if k > 0 {
			w, werr := v.WriteAt((*buf)[:k], off+n)
			n += int64(w)
			seen(w)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// copyBufs are the 256 KiB buffers of large reads: into files written
// through the page cache, and of ranged GET bodies (largeReads).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// account notes that p was written at off.
func (v *verifier) account(p []byte, off int64) {
	n := len(p)
	switch {
	case v.crc != nil:
		v.addRun(p, off)
	case v.h != nil:
		v.mu.Lock()
		switch {
		case off == v.next:
			v.h.Write(p)
			v.next += int64(n)
		case off < v.next:
			v.h.Reset() // rewritten (a retried range): start over from the file
			v.next = 0
		}
		v.mu.Unlock()
	}
	v.mu.Lock()
	v.written += int64(n)
	v.mu.Unlock()
}

func (v *verifier) addRun(p []byte, off int64) {
	r := v.runs.next(off, func(int64) uint64 { return 0 }, func(crc *uint64, _ int64) { *crc = 0 })
	r.s = v.crc.update(r.s, p) // outside any lock: the run is this goroutine's
	if v.runs.done(r, off+int64(len(p))) {
		v.mu.Lock()
		v.broken = true
		v.mu.Unlock()
	}
}

// Verify checks that the file is the object: size, then checksum, from
// the bytes as they were written when it can (FromStream), else by reading
// the file.
func (v *verifier) Verify() error {
	if err := checkSize(v.f, v.size); err != nil {
		return err
	}
	if ok, err := v.FromStream(); ok {
		return err
	}
	switch {
	case v.exp.algorithm == sizeOnly:
		return nil
	case v.crc != nil:
		return verifyFile(v.f, v.exp)
	}
	// Read back what did not arrive in order.
	if _, err := io.Copy(v.h, io.NewSectionReader(v.f, v.next, v.size-v.next)); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	return compare(v.exp, v.h.Sum(nil))
}

// checkSize checks that f has the object's size.
func checkSize(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != size {
		return fmt.Errorf("%w: file has %d bytes, the object %d", errMismatch, st.Size(), size)
	}
	return nil
}

// FromStream checks the checksum from the bytes as they were written,
// without the file (whose writes may still be under way): ok is false when
// that cannot be done and the file must be read (pieces overlapped, or
// came out of order for a digest that needs them in order). The size is
// not checked: Verify, or the caller once the writes are done, does.
func (v *verifier) FromStream() (ok bool, err error) {
	switch {
	case v.exp.algorithm == sizeOnly:
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.written == v.size, nil
	case v.crc != nil:
		c, ok := v.combined()
		if !ok {
			return false, nil
		}
		return true, compare(v.exp, v.crc.sum(c))
	default:
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.next != v.size {
			return false, nil
		}
		return true, compare(v.exp, v.h.Sum(nil))
	}
}

// combined joins the runs' CRCs when they tile [0, size) exactly.
func (v *verifier) combined() (uint64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.broken {
		return 0, false
	}
	rs := v.runs.all()
	sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	var crc uint64 // CRC of the empty string is 0 for these CRCs
	var at int64
	for _, r := range rs {
		if r.start != at {
			return 0, false
		}
		crc = v.crc.combine(crc, r.s, r.end-r.start)
		at = r.end
	}
	return crc, at == v.size
}

func compare(exp expected, got []byte) error {
	if !bytes.Equal(got, exp.Sum) {
		return fmt.Errorf("%w: %s of the file is %s, the object's is %s", errMismatch, exp.algorithm,
			expected{exp.algorithm, got}.String(), exp.String())
	}
	return nil
}

// verifyFile hashes the whole file and compares with exp (its size has
// been checked).
func verifyFile(f *os.File, exp expected) error {
	if exp.algorithm == sizeOnly {
		return nil
	}
	h := newHash(exp.algorithm)
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, 1<<62), buf); err != nil {
		return fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return compare(exp, h.Sum(nil))
}
