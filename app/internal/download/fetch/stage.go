package fetch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aircraftdata/platform/app/internal/download/fetch/disk"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// ErrTooBig and ErrNoSpace are the refusals of an object before it is written (Config.MaxObject, Config.Reserve).
var (
	ErrTooBig  = errors.New("object too big")
	ErrNoSpace = errors.New("not enough free space")
)

// admit reserves room for an object of size bytes on the volume, or says why it cannot be written: bigger than
// MaxObject, or it would leave less than Reserve free (counting the objects being written as already there). A
// reservation ends with unadmit.
func (fr *Fetcher) admit(size int64) error {
	if fr.cfg.MaxObject > 0 && size > fr.cfg.MaxObject {
		return permanent{fmt.Errorf("%w: %d bytes, over DOWNLOAD_MAX_OBJECT_BYTES (%d)", ErrTooBig, size, fr.cfg.MaxObject)}
	}
	if fr.cfg.Volume == "" {
		return nil
	}
	fr.space.Lock()
	defer fr.space.Unlock()
	free, err := disk.FreeBytes(fr.cfg.Volume)
	if err != nil {
		return onDisk("free space of DOWNLOAD_PATH unknown", err)
	}
	if free -= fr.writing; free-size < fr.cfg.Reserve {
		return permanent{fmt.Errorf("%w: need %d bytes, free %d, reserve %d (DOWNLOAD_RESERVE_BYTES)", ErrNoSpace,
			size, max(free, 0), fr.cfg.Reserve)}
	}
	fr.writing += size
	return nil
}

func (fr *Fetcher) unadmit(size int64) {
	if fr.cfg.Volume == "" {
		return
	}
	fr.space.Lock()
	fr.writing -= size
	fr.space.Unlock()
}

// write creates a temp file in the target folder, lets fill write the object into it, verifies it, and returns it
// staged for commit, which renames it to t. On any failure the temp file is removed: a file appears whole or not at
// all. An object that admit refuses is not written at all.
func (fr *Fetcher) write(t Target, m objectMeta, p *progress.Counter, fill func(countingWriterAt) error) (Result, error) {
	got := Result{Size: m.size, ETag: m.etag, VersionID: m.version, Checksum: m.exp.String()}
	if err := fr.admit(m.size); err != nil {
		return got, err
	}
	tmp := tempName()
	f, err := t.Dir.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		fr.unadmit(m.size)
		return got, permanent{onDisk("create temp file", err)}
	}
	ok := false
	var counted atomic.Int64
	defer func() {
		if !ok {
			f.Close()
			_ = t.Dir.Remove(tmp)
			p.AddDone(0, -counted.Load())
			fr.unadmit(m.size)
		}
	}()

	// Durable: straight to the disk (see disk.Direct), else through the page cache with writeback started early.
	var w io.WriterAt = f
	var dw *disk.Direct
	stopFlush := func() {}
	if fr.cfg.Durable {
		if dw, err = disk.OpenDirect(t.Dir, tmp, f); err == nil {
			w = dw
			if m.size > fr.cfg.PartSize && m.exp.Algorithm != disk.SizeOnly {
				disk.Preallocate(f, m.size)
			}
		} else if m.size > fr.cfg.PartSize {
			stopFlush = startWriteback(f)
		}
	}
	v := disk.NewVerifier(f, w, m.exp, m.size)
	err = fill(countingWriterAt{v, p, &counted})
	stopFlush()
	if err != nil {
		if dw != nil {
			dw.Close()
		}
		return got, err
	}
	// Verified from the bytes as they came, O_DIRECT writes are left to finish in the commit, while this worker fetches
	// its next file (for a small file, its single write to the disk was a quarter of the worker's time). Otherwise the
	// file is read: its writes must be done.
	var pending *disk.Direct
	if dw != nil {
		if ok, err := v.FromStream(); ok {
			if err != nil {
				dw.Close()
				return got, err
			}
			pending = dw
		} else if err := dw.Finish(); err != nil {
			return got, err
		}
	}
	if pending == nil {
		if err := v.Verify(); err != nil {
			return got, err
		}
	}
	if fr.cfg.Durable && dw == nil {
		// Start writing the rest to disk now, without waiting: by the time commit syncs the file, little is left to
		// write.
		disk.StartWriteOut(f)
	}
	ok = true
	got.Bytes = m.size
	got.staged = &staged{f: f, t: t, tmp: tmp, size: m.size, counted: counted.Load(), direct: pending}
	return got, nil
}

// Commit puts a staged file in place: its O_DIRECT writes finished and its size checked, synced to disk first when
// durable, then renamed. fence (may be nil) is called last, immediately before the rename: if it fails (the download
// lost its claim meanwhile, during a long sync), the file is not renamed and Commit returns its error. If it cannot,
// the temp file is removed and nothing is visible. The folder, which holds the rename, is synced later, once for all
// the files committed meanwhile, before their records say downloaded (Folders.SyncDirty).
func (fr *Fetcher) Commit(res Result, p *progress.Counter, fence func() error) error {
	s := res.staged
	if s == nil {
		return nil
	}
	defer fr.unadmit(s.size)
	err := func() error {
		if s.direct != nil {
			err := s.direct.Finish()
			s.direct = nil
			if err != nil {
				return err
			}
			if err := disk.CheckSize(s.f, s.size); err != nil {
				return err
			}
		}
		if fr.cfg.Durable {
			if err := s.f.Sync(); err != nil {
				return onDisk("sync", err)
			}
		}
		err := s.f.Close()
		s.f = nil
		if err != nil {
			return onDisk("close", err)
		}
		if fence != nil {
			if err := fence(); err != nil {
				return err
			}
		}
		if err := s.t.Dir.Rename(s.tmp, s.t.Name); err != nil {
			return onDisk("rename into place", err)
		}
		return nil
	}()
	if err != nil {
		s.discard(p)
	}
	return onDisk("", err)
}

// Discard removes a staged file instead of putting it in place.
func (fr *Fetcher) Discard(res Result, p *progress.Counter) {
	if s := res.staged; s != nil {
		if s.direct != nil {
			s.direct.Close()
			s.direct = nil
		}
		s.discard(p)
		fr.unadmit(s.size)
	}
}

func (s *staged) discard(p *progress.Counter) {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	_ = s.t.Dir.Remove(s.tmp)
	p.AddDone(0, -s.counted)
}

// countingWriterAt reports bytes to the progress counter as they are written.
type countingWriterAt struct {
	w *disk.Verifier
	p *progress.Counter
	n *atomic.Int64
}

func (c countingWriterAt) WriteAt(b []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(b, off)
	c.count(n)
	return n, err
}

// ReadFromAt reads src into the file from off (see disk.Verifier.ReadFromAt).
func (c countingWriterAt) ReadFromAt(src io.Reader, off int64) (int64, error) {
	return c.w.ReadFromAt(src, off, c.count)
}

func (c countingWriterAt) count(n int) {
	c.p.AddDone(0, int64(n))
	c.n.Add(int64(n))
}

// startWriteback starts writing f's dirty pages to disk every 20 ms while a large file is being written
// (startWriteOut), so that the fsync before the rename finds little left to write.
func startWriteback(f *os.File) (stop func()) {
	return Every(20*time.Millisecond, func() { disk.StartWriteOut(f) })
}

// Every calls fn every interval, in a goroutine of its own, until stop is called; stop returns once fn is no longer
// running.
func Every(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
