// Package fetch turns an S3 object into a verified, durable local file: the
// engine under package download, which decides which objects to fetch and
// records what happened.
//
// Each object is fetched with the AWS SDK's transfer manager in parallel
// ranged GETs (one GET for a small object) written straight to a temp file
// in the target folder (with O_DIRECT when durable: direct.go; memory does
// not grow with the file), verified against the object's checksum while it
// is written (checksum.go: CRCs of out-of-order ranges are combined), then
// synced and renamed into place by Commit: a file is there whole or not at
// all. A file already present with the right size and checksum is not
// fetched again. Transient errors are retried with exponential backoff and
// jitter, by the SDK per request and here per object.
package fetch

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aircraftdata/platform/app/internal/progress"
)

// Config configures a Fetcher. Every field is required.
type Config struct {
	S3              *s3.Client // the service's client; the fetcher derives its own transport from it
	Bucket          string
	Files           int           // objects fetched at once (sizes the connection pool)
	PartSize        int64         // bytes per ranged GET
	PartConcurrency int           // ranged GETs at once per object
	Attempts        int           // tries per object on transient errors
	ReadTimeout     time.Duration // a connection idle this long is dropped (and the range retried)
	Durable         bool          // write with O_DIRECT and sync before the rename (package download's Config.Durable)
	Log             *slog.Logger

	// Volume is a path on the file system the files go to (DOWNLOAD_PATH).
	// Before each file is written, its free space less the objects being
	// written must stay at least Reserve after the object: else the file
	// fails and nothing is written. Objects bigger than MaxObject (0: no
	// cap) fail too. Both refusals are permanent (not retried).
	Volume    string
	Reserve   int64
	MaxObject int64
}

// Fetcher fetches objects of one bucket into files.
type Fetcher struct {
	cfg Config
	s3  *s3.Client
	tm  *transfermanager.Client

	space   sync.Mutex
	writing int64 // bytes of the objects being written, admitted but not yet committed or removed
}

// New prepares a fetcher.
func New(cfg Config) *Fetcher {
	// A client of our own: enough pooled connections for every object's
	// ranges, a read timeout so a stalled connection fails (and is retried)
	// instead of hanging, and more patient retries (exponential backoff
	// with full jitter) than the service's default.
	hc := awshttp.NewBuildableClient().
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 0
			tr.MaxIdleConnsPerHost = cfg.Files*cfg.PartConcurrency + 4
		}).
		WithReadTimeout(cfg.ReadTimeout)
	client := s3.New(cfg.S3.Options(), func(o *s3.Options) {
		o.HTTPClient = hc
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 5
			so.MaxBackoff = 5 * time.Second
		})
		// Ranged responses carry no whole-object checksum: the verifier checks
		// the assembled file instead.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	ranges := s3.New(client.Options(), func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, withLargeReads)
	})
	tm := transfermanager.New(ranges, func(o *transfermanager.Options) {
		o.GetObjectType = tmtypes.GetObjectRanges
		o.PartSizeBytes = cfg.PartSize
		o.Concurrency = cfg.PartConcurrency
		o.DisableChecksumValidation = true
		o.PartBodyMaxRetries = 3
	})
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{cfg: cfg, s3: client, tm: tm}
}

// Object is the object to fetch, as its record knows it. An empty ETag
// or a Size <= 0 means unknown; a known one that the object no longer has
// fails the fetch (the record is stale).
type Object struct {
	Key  string
	ETag string
	Size int64
}

// Target is where a file goes: a name in its folder (see Folders).
type Target struct {
	Dir  *os.Root
	Name string
}

// Result is what a successful Fetch got: a file already in place (Present)
// or a verified temp file that Commit puts in place (or Discard removes).
type Result struct {
	Present   bool // already on disk, whole: nothing fetched
	Size      int64
	Bytes     int64 // fetched
	ETag      string
	VersionID string
	Checksum  string // how the file was verified: "algorithm:value" or "size-only"
	staged    *staged
}

// Staged says whether the file waits for Commit or Discard.
func (r Result) Staged() bool { return r.staged != nil }

// staged is a fetched and verified temp file, not yet in place: commit
// syncs it (when durable) and renames it.
type staged struct {
	f       *os.File
	t       Target
	tmp     string // name in t.Dir
	size    int64
	counted int64         // bytes reported to progress, taken back if the commit fails
	direct  *directWriter // O_DIRECT writes still under way (the commit waits for them), or nil
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ error }

func (e permanent) Unwrap() error { return e.error }

// Fetch fetches o into t, retrying transient errors; p (may be nil)
// follows the bytes. On success the file is in place (Present) or staged
// for Commit; on failure nothing is left behind.
func (fr *Fetcher) Fetch(ctx context.Context, o Object, t Target, p *progress.Counter) (Result, error) {
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		got, err := fr.fetch(ctx, o, t, p)
		if err == nil || ctx.Err() != nil || !transient(err) || attempt >= fr.cfg.Attempts {
			var pe permanent
			if errors.As(err, &pe) {
				err = pe.error
			}
			if err != nil && attempt > 1 {
				err = fmt.Errorf("%w (after %d tries)", err, attempt)
			}
			return got, err
		}
		fr.cfg.Log.Info("retrying download", "s3_key", o.Key, "try", attempt, "error", err)
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(Jitter(backoff)):
		}
		backoff *= 2
	}
}

// Jitter returns a random duration in [d/2, d): retries of many files spread
// out instead of hitting the server together.
func Jitter(d time.Duration) time.Duration {
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
	exp           expected
}

// metaOf reads the headers common to HeadObjectOutput and GetObjectOutput.
func metaOf(etag, version *string, size *int64, ct s3types.ChecksumType, sse s3types.ServerSideEncryption, ssec *string,
	crc32c, crc32, crc64, sha256, sha1 *string) objectMeta {
	m := objectMeta{etag: strings.Trim(aws.ToString(etag), `"`), version: aws.ToString(version), size: aws.ToInt64(size)}
	if m.version == "null" {
		m.version = ""
	}
	m.exp = expected{algorithm: sizeOnly}
	if ct != s3types.ChecksumTypeComposite {
		for _, c := range []struct {
			a algorithm
			v *string
		}{{algoCRC32C, crc32c}, {algoCRC32, crc32}, {algoCRC64NVME, crc64}, {algoSHA256, sha256}, {algoSHA1, sha1}} {
			v := aws.ToString(c.v)
			if v == "" || strings.Contains(v, "-") {
				continue // absent, or a checksum of part checksums
			}
			if sum, err := base64.StdEncoding.DecodeString(v); err == nil {
				m.exp = expected{algorithm: c.a, Sum: sum}
				return m
			}
		}
	}
	// A single-part upload's ETag is its MD5, unless KMS or SSE-C encrypted.
	kms := sse == s3types.ServerSideEncryptionAwsKms || sse == s3types.ServerSideEncryptionAwsKmsDsse || ssec != nil
	if sum, err := hex.DecodeString(m.etag); err == nil && len(sum) == 16 && !kms {
		m.exp = expected{algorithm: algoMD5ETag, Sum: sum}
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
func (fr *Fetcher) matches(r Object, m objectMeta) error {
	if r.ETag != "" && m.etag != r.ETag {
		return permanent{fmt.Errorf("s3://%s/%s changed since it was registered (etag %s, now %s): index it again", fr.cfg.Bucket, r.Key, r.ETag, m.etag)}
	}
	if r.ETag == "" && r.Size > 0 && m.size != r.Size {
		return permanent{fmt.Errorf("s3://%s/%s has %d bytes, its record says %d: register it again", fr.cfg.Bucket, r.Key, m.size, r.Size)}
	}
	return nil
}

func (fr *Fetcher) head(ctx context.Context, r Object) (objectMeta, error) {
	h, err := fr.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(fr.cfg.Bucket), Key: aws.String(r.Key)}, withChecksums)
	if err != nil {
		return objectMeta{}, describeS3(err, fr.cfg.Bucket, r.Key)
	}
	m := headMeta(h)
	return m, fr.matches(r, m)
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
func (fr *Fetcher) fetch(ctx context.Context, r Object, t Target, p *progress.Counter) (Result, error) {
	if st, err := t.Dir.Lstat(t.Name); err == nil && st.Mode().IsRegular() {
		m, err := fr.head(ctx, r)
		if err != nil {
			return Result{}, err
		}
		if st.Size() == m.size && verifyExisting(t, m.exp) == nil {
			p.AddDone(0, m.size) // verified in place: done without a transfer
			return Result{Present: true, Size: m.size, ETag: m.etag, VersionID: m.version, Checksum: m.exp.String()}, nil
		}
		return fr.fetchLarge(ctx, r, m, t, p) // wrong bytes on disk: fetch it again
	}
	if r.Size > 0 && r.Size <= fr.cfg.PartSize {
		return fr.fetchSmall(ctx, r, t, p)
	}
	m, err := fr.head(ctx, r)
	if err != nil {
		return Result{}, err
	}
	return fr.fetchLarge(ctx, r, m, t, p)
}

func verifyExisting(t Target, exp expected) error {
	f, err := t.Dir.Open(t.Name)
	if err != nil {
		return err
	}
	defer f.Close()
	return verifyFile(f, exp)
}

func (fr *Fetcher) fetchSmall(ctx context.Context, r Object, t Target, p *progress.Counter) (Result, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(fr.cfg.Bucket), Key: aws.String(r.Key)}
	if r.ETag != "" {
		in.IfMatch = aws.String(`"` + r.ETag + `"`)
	}
	out, err := fr.s3.GetObject(ctx, in, withChecksums)
	if err != nil {
		return Result{}, describeS3(err, fr.cfg.Bucket, r.Key)
	}
	defer out.Body.Close()
	m := getMeta(out)
	if err := fr.matches(r, m); err != nil {
		return Result{}, err
	}
	return fr.write(t, m, p, func(w countingWriterAt) error {
		_, err := w.ReadFromAt(out.Body, 0)
		if err != nil {
			return fmt.Errorf("s3://%s/%s: reading: %w", fr.cfg.Bucket, r.Key, err)
		}
		return nil
	})
}

func (fr *Fetcher) fetchLarge(ctx context.Context, r Object, m objectMeta, t Target, p *progress.Counter) (Result, error) {
	return fr.write(t, m, p, func(w countingWriterAt) error {
		if m.size == 0 {
			return nil
		}
		_, err := fr.tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{
			Bucket:   aws.String(fr.cfg.Bucket),
			Key:      aws.String(r.Key),
			IfMatch:  aws.String(`"` + m.etag + `"`), // every range from the same object, or a 412
			WriterAt: w,
		})
		if err != nil {
			return describeS3(err, fr.cfg.Bucket, r.Key)
		}
		return nil
	})
}

// ErrTooBig and ErrNoSpace are the refusals of an object before it is
// written (Config.MaxObject, Config.Reserve).
var (
	ErrTooBig  = errors.New("object too big")
	ErrNoSpace = errors.New("not enough free space")
)

// admit reserves room for an object of size bytes on the volume, or says
// why it cannot be written: bigger than MaxObject, or it would leave less
// than Reserve free (counting the objects being written as already there).
// A reservation ends with unadmit.
func (fr *Fetcher) admit(size int64) error {
	if fr.cfg.MaxObject > 0 && size > fr.cfg.MaxObject {
		return permanent{fmt.Errorf("%w: %d bytes, over DOWNLOAD_MAX_OBJECT_BYTES (%d)", ErrTooBig, size, fr.cfg.MaxObject)}
	}
	if fr.cfg.Volume == "" {
		return nil
	}
	fr.space.Lock()
	defer fr.space.Unlock()
	free, err := freeBytes(fr.cfg.Volume)
	if err != nil {
		return fmt.Errorf("free space of %s: %w", fr.cfg.Volume, err)
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

// write creates a temp file in the target folder, lets fill write the
// object into it, verifies it, and returns it staged for commit, which
// renames it to t. On any failure the temp file is removed: a file
// appears whole or not at all. An object that admit refuses is not
// written at all.
func (fr *Fetcher) write(t Target, m objectMeta, p *progress.Counter, fill func(countingWriterAt) error) (Result, error) {
	got := Result{Size: m.size, ETag: m.etag, VersionID: m.version, Checksum: m.exp.String()}
	if err := fr.admit(m.size); err != nil {
		return got, err
	}
	tmp := tempName()
	f, err := t.Dir.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		fr.unadmit(m.size)
		return got, permanent{fmt.Errorf("create temp file: %w", err)}
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

	// Durable: straight to the disk (see direct.go), else through the page
	// cache with writeback started early.
	var w io.WriterAt = f
	var dw *directWriter
	stopFlush := func() {}
	if fr.cfg.Durable {
		if dw, err = openDirect(t.Dir, tmp, f); err == nil {
			w = dw
			if m.size > fr.cfg.PartSize && m.exp.algorithm != sizeOnly {
				preallocate(f, m.size)
			}
		} else if m.size > fr.cfg.PartSize {
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
	if fr.cfg.Durable && dw == nil {
		// Start writing the rest to disk now, without waiting: by the
		// time commit syncs the file, little is left to write.
		startWriteOut(f)
	}
	ok = true
	got.Bytes = m.size
	got.staged = &staged{f: f, t: t, tmp: tmp, size: m.size, counted: counted.Load(), direct: pending}
	return got, nil
}

// Commit puts a staged file in place: its O_DIRECT writes finished and its
// size checked, synced to disk first when durable, then renamed. fence
// (may be nil) is called last, immediately before the rename: if it fails
// (the download lost its claim meanwhile, during a long sync), the file is
// not renamed and Commit returns its error. If it cannot, the temp file is
// removed and nothing is visible. The folder, which holds the rename, is
// synced later, once for all the files committed meanwhile, before their
// records say downloaded (Folders.SyncDirty).
func (fr *Fetcher) Commit(res Result, p *progress.Counter, fence func() error) error {
	s := res.staged
	if s == nil {
		return nil
	}
	defer fr.unadmit(s.size)
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
		if fr.cfg.Durable {
			if err := s.f.Sync(); err != nil {
				return fmt.Errorf("sync: %w", err)
			}
		}
		err := s.f.Close()
		s.f = nil
		if err != nil {
			return fmt.Errorf("close: %w", err)
		}
		if fence != nil {
			if err := fence(); err != nil {
				return err
			}
		}
		if err := s.t.Dir.Rename(s.tmp, s.t.Name); err != nil {
			return fmt.Errorf("rename into place: %w", err)
		}
		return nil
	}()
	if err != nil {
		s.discard(p)
	}
	return err
}

// Discard removes a staged file instead of putting it in place.
func (fr *Fetcher) Discard(res Result, p *progress.Counter) {
	if s := res.staged; s != nil {
		if s.direct != nil {
			s.direct.close()
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

// Temp files are named tempPrefix + 16 hex digits + tempSuffix, 25 bytes
// whatever the final name: a file whose name has the longest length a
// file system allows (255 bytes) still gets a temp file.
const (
	tempPrefix = ".dl-"
	tempSuffix = ".part"
)

func tempName() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return tempPrefix + hex.EncodeToString(b[:]) + tempSuffix
}

// isTemp says whether name is one of our temp files (or a temp file of an
// earlier release, named ".{name}.part-{12 hex digits}").
func isTemp(name string) bool {
	if rest, ok := strings.CutPrefix(name, tempPrefix); ok {
		if hexDigits, ok := strings.CutSuffix(rest, tempSuffix); ok {
			return len(hexDigits) == 16 && isHex(hexDigits)
		}
	}
	if i := strings.LastIndex(name, ".part-"); strings.HasPrefix(name, ".") && i > 0 {
		return len(name)-i-len(".part-") == 12 && isHex(name[i+len(".part-"):])
	}
	return false
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// Sweep removes the temp files in dir: left by a process that died while
// fetching into it (preallocated, each can be as large as its object).
// Only the holder of the folder's claim may call it: a temp file of a fetch
// under way would go too. It returns how many it removed.
func Sweep(dir *os.Root) (int, error) {
	f, err := dir.Open(".")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	var errs []error
	for {
		names, err := f.Readdirnames(1024)
		for _, name := range names {
			if !isTemp(name) {
				continue
			}
			if err := dir.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			n++
		}
		if err == io.EOF || len(names) == 0 {
			break
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	return n, errors.Join(errs...)
}

func syncDir(dir *os.Root) error {
	f, err := dir.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
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

// startWriteback starts writing f's dirty pages to disk every 20 ms while
// a large file is being written (startWriteOut), so that the fsync before
// the rename finds little left to write.
func startWriteback(f *os.File) (stop func()) {
	return Every(20*time.Millisecond, func() { startWriteOut(f) })
}

// Every calls fn every interval, in a goroutine of its own, until stop is
// called; stop returns once fn is no longer running.
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
