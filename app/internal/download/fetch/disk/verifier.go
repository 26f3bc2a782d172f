package disk

import (
	"fmt"
	"hash"
	"io"
	"os"
	"sort"
	"sync"
)

// Verifier is the io.WriterAt a download writes through: it writes to the temp file and hashes on the way, so that
// verifying costs no second read of the file in the common cases.
//
// CRCs are kept per run of contiguous writes (each ranged GET writes one run, in order) and combined at the end. Other
// digests can only be fed in file order: the bytes that arrive in order are hashed as they come, the rest is read back
// from the (page-cached) file by Verify.
type Verifier struct {
	f    *os.File    // the file, for its size and reading back
	w    io.WriterAt // where writes go: f, or f through a Direct
	exp  Expected
	size int64
	crc  *crcKind

	runs runTable[uint64] // with a CRC: the CRC of each run

	mu      sync.Mutex
	broken  bool      // writes overlapped in a way runs cannot describe: hash the file
	h       hash.Hash // in-order digest of [0, next)
	next    int64
	written int64
}

func NewVerifier(f *os.File, w io.WriterAt, exp Expected, size int64) *Verifier {
	v := &Verifier{f: f, w: w, exp: exp, size: size, crc: crcKinds[exp.Algorithm]}
	if v.crc == nil && exp.Algorithm != SizeOnly {
		v.h = newHash(exp.Algorithm)
	}
	return v
}

// WriteAt writes p at off in the file and accounts for it.
func (v *Verifier) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > v.size {
		return 0, fmt.Errorf("write of %d bytes at %d is beyond the object's %d bytes (the object changed?)", len(p), off, v.size)
	}
	n, err := v.w.WriteAt(p, off)
	v.account(p[:n], off)
	return n, err
}

// ReadFromAt reads src into the file from off and accounts for it, calling seen with the size of each piece. Written
// with O_DIRECT, the pieces are read straight into the aligned buffers that go to the disk.
func (v *Verifier) ReadFromAt(src io.Reader, off int64, seen func(int)) (int64, error) {
	if dw, ok := v.w.(*Direct); ok && off%directBlock == 0 && off >= 0 && off <= v.size {
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

// copyBufs are the 256 KiB buffers of large reads: into files written through the page cache, and of ranged GET bodies
// (Copy).
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Copy copies src to dst in reads of up to 256 KiB (io.Copy reads 32 KiB at a time unless src is an io.WriterTo), with
// a buffer of the pool that files written through the page cache read into.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(dst, struct{ io.Reader }{src}, *buf)
}

// account notes that p was written at off.
func (v *Verifier) account(p []byte, off int64) {
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

func (v *Verifier) addRun(p []byte, off int64) {
	r := v.runs.next(off, func(int64) uint64 { return 0 }, func(crc *uint64, _ int64) { *crc = 0 })
	r.s = v.crc.update(r.s, p) // outside any lock: the run is this goroutine's
	if v.runs.done(r, off+int64(len(p))) {
		v.mu.Lock()
		v.broken = true
		v.mu.Unlock()
	}
}

// Verify checks that the file is the object: size, then checksum, from the bytes as they were written when it can
// (FromStream), else by reading the file.
func (v *Verifier) Verify() error {
	if err := CheckSize(v.f, v.size); err != nil {
		return err
	}
	if ok, err := v.FromStream(); ok {
		return err
	}
	switch {
	case v.exp.Algorithm == SizeOnly:
		return nil
	case v.crc != nil:
		return VerifyFile(v.f, v.exp)
	}
	// Read back what did not arrive in order.
	if _, err := io.Copy(v.h, io.NewSectionReader(v.f, v.next, v.size-v.next)); err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	return compare(v.exp, v.h.Sum(nil))
}

// CheckSize checks that f has the object's size.
func CheckSize(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != size {
		return fmt.Errorf("%w: file has %d bytes, the object %d", ErrMismatch, st.Size(), size)
	}
	return nil
}

// FromStream checks the checksum from the bytes as they were written, without the file (whose writes may still be under
// way): ok is false when that cannot be done and the file must be read (pieces overlapped, or came out of order for a
// digest that needs them in order). The size is not checked: Verify, or the caller once the writes are done, does.
func (v *Verifier) FromStream() (ok bool, err error) {
	switch {
	case v.exp.Algorithm == SizeOnly:
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
func (v *Verifier) combined() (uint64, bool) {
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
