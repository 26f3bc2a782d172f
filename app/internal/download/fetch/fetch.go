package download

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sys/unix"

	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// fetched is what a successful fetch got.
type fetched struct {
	present  bool // already on disk, whole: nothing fetched
	size     int64
	bytes    int64 // fetched
	etag     string
	version  string
	checksum string
	staged   *staged // the verified temp file to commit (nil when present)
	rel      string  // where the file is, below DOWNLOAD_PATH
}

// staged is a fetched and verified temp file, not yet in place: commit
// syncs it (when durable) and renames it.
type staged struct {
	f       *os.File
	t       target
	tmp     string // name in t.dir
	size    int64
	counted int64         // bytes reported to progress, taken back if the commit fails
	direct  *directWriter // O_DIRECT writes still under way (the commit waits for them), or nil
}

// target is where a file goes: a name in its folder.
type target struct {
	dir  *os.Root // the file's folder, below DOWNLOAD_PATH (see folders)
	name string
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ error }

func (e permanent) Unwrap() error { return e.error }

func (d *Downloader) fetchWithRetries(ctx context.Context, r lanes.Record, t target, p *progress.Counter) (fetched, error) {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		got, err := d.fetch(ctx, r, t, p)
		if err == nil || ctx.Err() != nil || !transient(err) || attempt >= d.cfg.Attempts {
			var pe permanent
			if errors.As(err, &pe) {
				err = pe.error
			}
			if err != nil && attempt > 1 {
				err = fmt.Errorf("%w (after %d tries)", err, attempt)
			}
			return got, err
		}
		d.cfg.Log.Info("retrying download", "s3_key", r.Key, "try", attempt, "error", err)
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(jitter(backoff)):
		}
		backoff *= 2
	}
}

// jitter returns a random duration in [d/2, d): retries of many files spread
// out instead of hitting the server together.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// transient says whether err may go away on a retry: network errors,
// throttling and server errors, a checksum mismatch (bytes damaged on the
// way). Client errors (missing or changed object, access denied) and local
// file errors do not.
func transient(err error) bool {
	var pe permanent
	if errors.As(err, &pe) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		code := re.HTTPStatusCode()
		return code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
	}
	var pathErr *fs.PathError
	return !errors.As(err, &pathErr)
}

// objectMeta is what a HEAD or a whole-object GET says of the object.
type objectMeta struct {
	etag, version string
	size          int64
	exp           Expected
}

// metaOf reads the headers common to HeadObjectOutput and GetObjectOutput.
func metaOf(etag, version *string, size *int64, ct s3types.ChecksumType, sse s3types.ServerSideEncryption, ssec *string,
	crc32c, crc32, crc64, sha256, sha1 *string) objectMeta {
	m := objectMeta{etag: strings.Trim(aws.ToString(etag), `"`), version: aws.ToString(version), size: aws.ToInt64(size)}
	if m.version == "null" {
		m.version = ""
	}
	m.exp = Expected{Algorithm: NoSum}
	if ct != s3types.ChecksumTypeComposite {
		for _, c := range []struct {
			a Algorithm
			v *string
		}{{CRC32C, crc32c}, {CRC32, crc32}, {CRC64NVME, crc64}, {SHA256, sha256}, {SHA1, sha1}} {
			v := aws.ToString(c.v)
			if v == "" || strings.Contains(v, "-") {
				continue // absent, or a checksum of part checksums
			}
			if sum, err := base64.StdEncoding.DecodeString(v); err == nil {
				m.exp = Expected{Algorithm: c.a, Sum: sum}
				return m
			}
		}
	}
	// A single-part upload's ETag is its MD5, unless KMS or SSE-C encrypted.
	kms := sse == s3types.ServerSideEncryptionAwsKms || sse == s3types.ServerSideEncryptionAwsKmsDsse || ssec != nil
	if sum, err := hex.DecodeString(m.etag); err == nil && len(sum) == 16 && !kms {
		m.exp = Expected{Algorithm: MD5ETag, Sum: sum}
	}
	return m
}

func headMeta(h *s3.HeadObjectOutput) objectMeta {
	return metaOf(h.ETag, h.VersionId, h.ContentLength, h.ChecksumType, h.ServerSideEncryption, h.SSECustomerAlgorithm,
		h.ChecksumCRC32C, h.ChecksumCRC32, h.ChecksumCRC64NVME, h.ChecksumSHA256, h.ChecksumSHA1)
}

func getMeta(g *s3.GetObjectOutput) objectMeta {
	return metaOf(g.ETag, g.VersionId, g.ContentLength, g.ChecksumType, g.ServerSideEncryption, g.SSECustomerAlgorithm,
		g.ChecksumCRC32C, g.ChecksumCRC32, g.ChecksumCRC64NVME, g.ChecksumSHA256, g.ChecksumSHA1)
}

// withChecksums asks for the object's checksums (x-amz-checksum-mode) without
// the SDK validating them on the fly: the verifier checks the file itself,
// once.
var withChecksums = s3.WithAPIOptions(smithyhttp.AddHeaderValue("X-Amz-Checksum-Mode", "ENABLED"))

// matches checks that the object is still the one the record names.
func (d *Downloader) matches(r lanes.Record, m objectMeta) error {
	if r.ETag != "" && m.etag != r.ETag {
		return permanent{fmt.Errorf("s3://%s/%s changed since it was registered (etag %s, now %s): index it again", d.cfg.Bucket, r.Key, r.ETag, m.etag)}
	}
	if r.ETag == "" && r.Size > 0 && m.size != r.Size {
		return permanent{fmt.Errorf("s3://%s/%s has %d bytes, its record says %d: register it again", d.cfg.Bucket, r.Key, m.size, r.Size)}
	}
	return nil
}

func (d *Downloader) head(ctx context.Context, r lanes.Record) (objectMeta, error) {
	h, err := d.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.cfg.Bucket), Key: aws.String(r.Key)}, withChecksums)
	if err != nil {
		return objectMeta{}, describeS3(err, d.cfg.Bucket, r.Key)
	}
	m := headMeta(h)
	return m, d.matches(r, m)
}

// fetch makes one attempt at one file:
//   - a file already at t with the object's size and checksum is kept
//     (one HEAD, no GET);
//   - a small object (up to one part) comes in one GET that also carries its
//     checksums;
//   - a large one is HEADed for its checksums, then fetched by the transfer
//     manager in parallel ranged GETs pinned to its ETag.
//
// Bytes go to a temp file next to the target, through the verifier, and the
// file is renamed into place only once verified.
func (d *Downloader) fetch(ctx context.Context, r lanes.Record, t target, p *progress.Counter) (fetched, error) {
	if st, err := t.dir.Lstat(t.name); err == nil && st.Mode().IsRegular() {
		m, err := d.head(ctx, r)
		if err != nil {
			return fetched{}, err
		}
		if st.Size() == m.size && verifyExisting(t, m.exp) == nil {
			p.AddDone(0, m.size) // verified in place: done without a transfer
			return fetched{present: true, size: m.size, etag: m.etag, version: m.version, checksum: m.exp.String()}, nil
		}
		return d.fetchLarge(ctx, r, m, t, p) // wrong bytes on disk: fetch it again
	}
	if r.Size > 0 && r.Size <= d.cfg.PartSize {
		return d.fetchSmall(ctx, r, t, p)
	}
	m, err := d.head(ctx, r)
	if err != nil {
		return fetched{}, err
	}
	return d.fetchLarge(ctx, r, m, t, p)
}

func verifyExisting(t target, exp Expected) error {
	f, err := t.dir.Open(t.name)
	if err != nil {
		return err
	}
	defer f.Close()
	return verifyFile(f, exp)
}

func (d *Downloader) fetchSmall(ctx context.Context, r lanes.Record, t target, p *progress.Counter) (fetched, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(d.cfg.Bucket), Key: aws.String(r.Key)}
	if r.ETag != "" {
		in.IfMatch = aws.String(`"` + r.ETag + `"`)
	}
	out, err := d.s3.GetObject(ctx, in, withChecksums)
	if err != nil {
		return fetched{}, describeS3(err, d.cfg.Bucket, r.Key)
	}
	defer out.Body.Close()
	m := getMeta(out)
	if err := d.matches(r, m); err != nil {
		return fetched{}, err
	}
	return d.write(t, m, p, func(w countingWriterAt) error {
		_, err := w.ReadFromAt(out.Body, 0)
		if err != nil {
			return fmt.Errorf("s3://%s/%s: reading: %w", d.cfg.Bucket, r.Key, err)
		}
		return nil
	})
}

func (d *Downloader) fetchLarge(ctx context.Context, r lanes.Record, m objectMeta, t target, p *progress.Counter) (fetched, error) {
	return d.write(t, m, p, func(w countingWriterAt) error {
		if m.size == 0 {
			return nil
		}
		_, err := d.tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{
			Bucket:   aws.String(d.cfg.Bucket),
			Key:      aws.String(r.Key),
			IfMatch:  aws.String(`"` + m.etag + `"`), // every range from the same object, or a 412
			WriterAt: w,
		})
		if err != nil {
			return describeS3(err, d.cfg.Bucket, r.Key)
		}
		return nil
	})
}

// write creates a temp file in the target folder, lets fill write the
// object into it, verifies it, and returns it staged for commit, which
// renames it to t. On any failure the temp file is removed: a file
// appears whole or not at all.
func (d *Downloader) write(t target, m objectMeta, p *progress.Counter, fill func(countingWriterAt) error) (fetched, error) {
	got := fetched{size: m.size, etag: m.etag, version: m.version, checksum: m.exp.String()}
	tmp := "." + t.name + ".part-" + randomSuffix()
	f, err := t.dir.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return got, permanent{fmt.Errorf("create temp file: %w", err)}
	}
	ok := false
	var counted atomic.Int64
	defer func() {
		if !ok {
			f.Close()
			_ = t.dir.Remove(tmp)
			p.AddDone(0, -counted.Load())
		}
	}()

	// Durable: straight to the disk (see direct.go), else through the page
	// cache with writeback started early.
	var w io.WriterAt = f
	var dw *directWriter
	stopFlush := func() {}
	if d.cfg.Durable {
		if dw, err = openDirect(t.dir, tmp, f); err == nil {
			w = dw
			if m.size > d.cfg.PartSize && m.exp.Algorithm != NoSum {
				preallocate(f, m.size)
			}
		} else if m.size > d.cfg.PartSize {
			stopFlush = startWriteback(f)
		}
	}
	v := newVerifier(f, w, m.exp, m.size)
	err = fill(countingWriterAt{v, p, &counted})
	stopFlush()
	if err != nil {
		if dw != nil {
			dw.close()
		}
		return got, err
	}
	// Verified from the bytes as they came, O_DIRECT writes are left to
	// finish in the commit, while this worker fetches its next file (for a
	// small file, its single write to the disk was a quarter of the
	// worker's time). Otherwise the file is read: its writes must be done.
	var pending *directWriter
	if dw != nil {
		if ok, err := v.FromStream(); ok {
			if err != nil {
				dw.close()
				return got, err
			}
			pending = dw
		} else if err := dw.finish(); err != nil {
			return got, err
		}
	}
	if pending == nil {
		if err := v.Verify(); err != nil {
			return got, err
		}
	}
	if d.cfg.Durable && dw == nil {
		// Start writing the rest to disk now, without waiting: by the
		// time commit syncs the file, little is left to write.
		_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	ok = true
	got.bytes = m.size
	got.staged = &staged{f: f, t: t, tmp: tmp, size: m.size, counted: counted.Load(), direct: pending}
	return got, nil
}

// commit puts a staged file in place: its O_DIRECT writes finished and its
// size checked, synced to disk first when durable, then renamed. If it
// cannot, the temp file is removed and nothing is visible. The folder, which holds the rename, is synced later, once for
// all the files committed meanwhile, before their records say downloaded
// (folders.syncDirty, from the recorder).
func (d *Downloader) commit(s *staged, p *progress.Counter) error {
	err := func() error {
		if s.direct != nil {
			err := s.direct.finish()
			s.direct = nil
			if err != nil {
				return err
			}
			if err := checkSize(s.f, s.size); err != nil {
				return err
			}
		}
		if d.cfg.Durable {
			if err := s.f.Sync(); err != nil {
				return fmt.Errorf("sync: %w", err)
			}
		}
		err := s.f.Close()
		s.f = nil
		if err != nil {
			return fmt.Errorf("close: %w", err)
		}
		if err := s.t.dir.Rename(s.tmp, s.t.name); err != nil {
			return fmt.Errorf("rename into place: %w", err)
		}
		return nil
	}()
	if err != nil {
		if s.f != nil {
			s.f.Close()
		}
		_ = s.t.dir.Remove(s.tmp)
		p.AddDone(0, -s.counted)
		return err
	}
	return nil
}

func syncDir(dir *os.Root) error {
	f, err := dir.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func randomSuffix() string {
	var b [6]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// countingWriterAt reports bytes to the progress counter as they are written.
type countingWriterAt struct {
	w *verifier
	p *progress.Counter
	n *atomic.Int64
}

func (c countingWriterAt) WriteAt(b []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(b, off)
	c.count(n)
	return n, err
}

// ReadFromAt reads src into the file from off (see verifier.ReadFromAt).
func (c countingWriterAt) ReadFromAt(src io.Reader, off int64) (int64, error) {
	return c.w.ReadFromAt(src, off, c.count)
}

func (c countingWriterAt) count(n int) {
	c.p.AddDone(0, int64(n))
	c.n.Add(int64(n))
}

// describeS3 turns an S3 error into a reason a client can act on.
func describeS3(err error, bucket, key string) error {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return permanent{fmt.Errorf("s3://%s/%s not found: deleted since it was registered?", bucket, key)}
		case http.StatusPreconditionFailed:
			return permanent{fmt.Errorf("s3://%s/%s changed since it was registered: index it again", bucket, key)}
		case http.StatusForbidden:
			return permanent{fmt.Errorf("s3://%s/%s: access denied", bucket, key)}
		}
	}
	return fmt.Errorf("s3://%s/%s: %w", bucket, key, err)
}

// startWriteback asks the kernel, every 20 ms while a large file is being
// written, to start writing its dirty pages to disk (sync_file_range
// SYNC_FILE_RANGE_WRITE: it does not wait), so that the fsync before the
// rename finds little left to write.
func startWriteback(f *os.File) (stop func()) {
	return every(20*time.Millisecond, func() {
		_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	})
}

// withLargeReads makes the bodies of the transfer manager's ranged GETs
// write themselves to the file in large reads. The transfer manager copies
// a range with io.Copy, which reads 32 KiB at a time unless the body is an
// io.WriterTo: a read system call, a checksum update and a WriteAt per
// 32 KiB.
func withLargeReads(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("LargeReads",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && err == nil {
				resp.Body = largeReads{resp.Body}
			}
			return out, md, err
		}), middleware.After)
}

// largeReads is a response body that writes itself in reads of up to
// 256 KiB.
type largeReads struct{ io.ReadCloser }

func (b largeReads) WriteTo(w io.Writer) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(w, struct{ io.Reader }{b.ReadCloser}, *buf)
}
