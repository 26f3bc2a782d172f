package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"
)

// Durable downloads write with O_DIRECT: the bytes go from our buffer to the disk without a copy into the page cache
// and without the writeback that fsync would then have to do. On the 2-core dev machine, writing and syncing 1 GiB took
// ~150 ms of CPU this way against 0.8-4 s through the page cache (sync_file_range + fsync), at the same 1.3-1.6 GB/s:
// on a machine whose cores are busy with the transfer itself, that CPU was what durability cost.
//
// O_DIRECT wants whole, aligned blocks. Each range of a file is written in order (the transfer manager's ranges, or the
// single GET of a small file), so a Direct gathers each range's bytes in an aligned buffer and writes it when full; at
// the end, finish writes what is left: whole blocks directly, the last partial block through the ordinary descriptor.
// Where O_DIRECT is refused (tmpfs, some network file systems) the download falls back to the page cache.

const (
	directBlock = 4096    // alignment of O_DIRECT offsets, lengths and memory (the largest logical block in use)
	directBuf   = 1 << 20 // bytes gathered per range before a write (two per range at most: one filling, one being written)
)

var directBufs = sync.Pool{New: func() any { return alignedBuffer(directBuf) }}

// alignedBuffer returns n bytes starting at a directBlock boundary.
func alignedBuffer(n int) *[]byte {
	b := make([]byte, n+directBlock)
	skip := (directBlock - int(uintptrOf(b)%directBlock)) % directBlock
	b = b[skip : skip+n : skip+n]
	return &b
}

// Direct is an io.WriterAt over a temp file opened twice: with O_DIRECT for whole blocks, and plainly for the rest.
type Direct struct {
	direct *os.File
	plain  *os.File
	runs   runTable[directRun]
}

// directRun is the bytes of one range not yet written: buf holds the bytes from at onwards.
type directRun struct {
	at      int64      // file offset of buf[0]
	buf     []byte     // waiting bytes; len <= directBuf
	pool    *[]byte    // buf's backing buffer, from directBufs, held only while bytes wait
	plain   bool       // the run did not start on a block: the page cache takes it
	writing chan error // the write of the run's previous buffer, under way (nil: none)
}

// wait waits for the run's write under way, if any.
func (r *directRun) wait() error {
	if r.writing == nil {
		return nil
	}
	err := <-r.writing
	r.writing = nil
	return err
}

// OpenDirect opens name in dir a second time with O_DIRECT, for writing beside plain. It fails where the file system
// refuses O_DIRECT.
func OpenDirect(dir *os.Root, name string, plain *os.File) (*Direct, error) {
	f, err := openDirectFile(dir, name)
	if err != nil {
		return nil, err
	}
	return &Direct{direct: f, plain: plain}, nil
}

// WriteAt writes p at off, in the run it belongs to (see runTable).
func (w *Direct) WriteAt(p []byte, off int64) (int, error) {
	r := w.runs.next(off, newDirectRun, restartDirectRun)
	n, err := w.write(&r.s, p, off)
	w.runs.done(r, off+int64(n))
	return n, err
}

func newDirectRun(off int64) directRun { return directRun{at: off, plain: off%directBlock != 0} }

func restartDirectRun(d *directRun, start int64) {
	_ = d.wait()                   // what it wrote before is written over, after
	d.at, d.buf = start, d.buf[:0] // (the same bytes: every range is pinned to the ETag)
}

func (w *Direct) write(r *directRun, p []byte, off int64) (int, error) {
	if r.plain {
		return w.plain.WriteAt(p, off)
	}
	n := 0
	for len(p) > 0 {
		if r.pool == nil {
			r.pool = directBufs.Get().(*[]byte)
			r.buf = (*r.pool)[:0]
		}
		c := copy(r.buf[len(r.buf):cap(r.buf)], p)
		r.buf = r.buf[:len(r.buf)+c]
		p, n = p[c:], n+c
		if err := w.spill(r); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// readFrom reads src into the file from off, a block boundary, as one run written in order, straight into the run's
// aligned buffers: the bytes are not copied on their way to the disk. seen is called with each piece read, at its
// offset, before it is written. It reads at most max bytes and fails if src holds more.
func (w *Direct) readFrom(src io.Reader, off, max int64, seen func([]byte, int64)) (int64, error) {
	r := w.runs.next(off, newDirectRun, restartDirectRun)
	rs := &r.s
	var n int64
	defer func() { w.runs.done(r, off+n) }()
	for {
		if rs.pool == nil {
			rs.pool = directBufs.Get().(*[]byte)
			rs.buf = (*rs.pool)[:0]
		}
		room := rs.buf[len(rs.buf):cap(rs.buf)]
		if left := max - n; int64(len(room)) > left {
			room = room[:left+1] // one byte more than allowed: to see that there is more
		}
		k, err := src.Read(room)
		if n+int64(k) > max {
			return n, fmt.Errorf("more than the object's %d bytes (the object changed?)", off+max)
		}
		if k > 0 {
			seen(room[:k], off+n)
			rs.buf = rs.buf[:len(rs.buf)+k]
			n += int64(k)
			if err := w.spill(rs); err != nil {
				return n, err
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

// spill starts writing r's buffer when it is full: it is written while the range goes on filling the next one, so that
// the network and the disk work at once. One write per run at a time; the buffer goes back to the pool once written, so
// that a finished range (a whole number of buffers, as 50 MiB parts are) holds none.
func (w *Direct) spill(r *directRun) error {
	if len(r.buf) < cap(r.buf) {
		return nil
	}
	if err := r.wait(); err != nil {
		return err // the file is given up: what reached the disk does not matter
	}
	buf, pool, at := r.buf, r.pool, r.at
	r.writing = make(chan error, 1)
	go func(done chan<- error) {
		_, err := w.direct.WriteAt(buf, at)
		directBufs.Put(pool)
		if err != nil {
			err = fmt.Errorf("direct write: %w", err)
		}
		done <- err
	}(r.writing)
	r.at += int64(len(buf))
	r.pool, r.buf = nil, nil
	return nil
}

// finish writes what the runs still hold and closes the O_DIRECT descriptor. The plain one stays open (the caller's).
func (w *Direct) Finish() error {
	var errs []error
	for _, each := range w.runs.all() {
		r := &each.s
		if err := r.wait(); err != nil {
			errs = append(errs, err)
		}
		if len(r.buf) == 0 {
			continue
		}
		whole := len(r.buf) / directBlock * directBlock
		if whole > 0 {
			if _, err := w.direct.WriteAt(r.buf[:whole], r.at); err != nil {
				errs = append(errs, fmt.Errorf("direct write: %w", err))
			}
		}
		if whole < len(r.buf) {
			if _, err := w.plain.WriteAt(r.buf[whole:], r.at+int64(whole)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	w.Close()
	return errors.Join(errs...)
}

// close waits for the writes under way and lets the buffers and the O_DIRECT descriptor go. A second call does nothing
// more.
func (w *Direct) Close() {
	for _, each := range w.runs.all() {
		r := &each.s
		_ = r.wait()
		if r.pool != nil {
			directBufs.Put(r.pool)
			r.pool, r.buf = nil, nil
		}
	}
	_ = w.direct.Close()
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
