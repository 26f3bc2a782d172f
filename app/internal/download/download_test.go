package download_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

var ctx = context.Background()

// partSize is small in tests so that a 9 MiB object takes the ranged path.
const partSize = 2 << 20

// env is a bucket, a store and a downloads folder of the test's own.
type env struct {
	bucket bucket.Bucket
	store  *mongo.Store
	db     *mongotest.DB // the store's database, for records put in by hand
	root   string
	prefix string
	files  map[string][]byte // key → uploaded bytes
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db := mongotest.NewDB(t)
	e := &env{store: db.Store(t), db: db, bucket: stacktest.Bucket(t), files: map[string][]byte{}}
	e.root = filepath.Join(t.TempDir(), "downloads")
	e.prefix = stacktest.Name("lanes/run") + "/"
	return e
}

func (e *env) downloader(t *testing.T, s3c *s3.Client, mod ...func(*download.Config)) *download.Downloader {
	t.Helper()
	cfg := download.Config{
		Records: e.store, Claims: e.store, S3: s3c, Bucket: e.bucket.Name, Root: e.root,
		Workers: 3, PartSize: partSize, PartConcurrency: 3, Lease: 30 * time.Second, Wait: time.Minute, Durable: true,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, m := range mod {
		m(&cfg)
	}
	d, err := download.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// put uploads n random bytes under the prefix with the given checksum algorithm ("" = none: the ETag is the MD5).
func (e *env) put(t *testing.T, key string, n int, algo s3types.ChecksumAlgorithm) []byte {
	t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), uint64(len(key))))
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	in := &s3.PutObjectInput{Bucket: aws.String(e.bucket.Name), Key: aws.String(e.prefix + key), Body: bytes.NewReader(data), ChecksumAlgorithm: algo}
	var opts []func(*s3.Options)
	if algo == "" {
		opts = append(opts, func(o *s3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired })
	}
	if _, err := e.bucket.Client.PutObject(ctx, in, opts...); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	e.files[e.prefix+key] = data
	return data
}

// putHour uploads n files of size bytes (CRC32C) into lane1's hour 14 and indexes them; it returns their keys.
func (e *env) putHour(t *testing.T, n, size int) []string {
	t.Helper()
	var keys []string
	for i := range n {
		k := fmt.Sprintf("lane1/2024/02/14/14/f%d.bin", i)
		e.put(t, k, size, s3types.ChecksumAlgorithmCrc32c)
		keys = append(keys, e.prefix+k)
	}
	e.index(t)
	return keys
}

func (e *env) index(t *testing.T) *download.IndexResult {
	t.Helper()
	ix := &download.Indexer{Store: e.store, Bucket: e.bucket}
	res, err := ix.Index(ctx, e.prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func hour(t *testing.T, lane string, h int) lanes.Hour {
	t.Helper()
	hr, err := lanes.NewHour(lane, "2024-02-14", h)
	if err != nil {
		t.Fatal(err)
	}
	return hr
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// checkOnDisk checks that each key's file is at the layout's path with the uploaded bytes (sha256 of what was uploaded
// against sha256 of the file).
func (e *env) checkOnDisk(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		_, rest, _ := strings.Cut(strings.TrimPrefix(k, e.prefix), "/")
		lane, _, _ := strings.Cut(strings.TrimPrefix(k, e.prefix), "/")
		path := filepath.Join(e.root, lane, filepath.FromSlash(rest))
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", k, err)
			continue
		}
		if sum(got) != sum(e.files[k]) {
			t.Errorf("%s: file on disk (%d bytes) differs from the uploaded object (%d bytes)", k, len(got), len(e.files[k]))
		}
	}
}

// leftovers lists temp files (hidden: the tests' files are not) below the downloads folder.
func leftovers(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".") && p != root {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func keysOf(fs []download.File) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Key)
	}
	slices.Sort(out)
	return out
}

func TestIndexAndDownloadHour(t *testing.T) {
	e := newEnv(t)
	p := e.prefix
	e.put(t, "lane1/2024/02/14/14/a-1k.bin", 1<<10, s3types.ChecksumAlgorithmCrc32c)
	e.put(t, "lane1/2024/02/14/14/b-300k.bin", 300<<10, s3types.ChecksumAlgorithmCrc32)
	e.put(t, "lane1/2024/02/14/14/c-1m-nosum.bin", 1<<20, "") // no checksum sent: the server adds CRC64NVME, as S3 does
	e.put(t, "lane1/2024/02/14/14/d-9m.bin", 9<<20, s3types.ChecksumAlgorithmCrc64nvme)
	e.put(t, "lane1/2024/02/14/14/e-3m-sha256.bin", 3<<20, s3types.ChecksumAlgorithmSha256)
	e.put(t, "lane1/2024/02/14/14/f-empty.bin", 0, s3types.ChecksumAlgorithmCrc32c)
	e.put(t, "lane1/2024/02/14/15/other-hour.bin", 10, s3types.ChecksumAlgorithmCrc32c)
	e.put(t, "lane2/2024/02/14/14/other-lane.bin", 10, s3types.ChecksumAlgorithmCrc32c)
	e.put(t, "notes/readme.txt", 10, s3types.ChecksumAlgorithmCrc32c)
	hourKeys := []string{
		p + "lane1/2024/02/14/14/a-1k.bin", p + "lane1/2024/02/14/14/b-300k.bin", p + "lane1/2024/02/14/14/c-1m-nosum.bin",
		p + "lane1/2024/02/14/14/d-9m.bin", p + "lane1/2024/02/14/14/e-3m-sha256.bin", p + "lane1/2024/02/14/14/f-empty.bin",
	}

	// Index, then again: nothing new.
	res := e.index(t)
	if res.Objects != 9 || res.Added != 8 || res.SkippedCount != 1 || res.Skipped[0].Key != p+"notes/readme.txt" {
		t.Errorf("index: %+v", res)
	}
	res = e.index(t)
	if res.Added != 0 || res.Updated != 0 || res.Unchanged != 8 {
		t.Errorf("index rerun: %+v, want 8 unchanged", res)
	}

	// Download the hour.
	d := e.downloader(t, e.bucket.Client)
	prog := new(progress.Counter)
	got, err := d.Download(ctx, hour(t, "lane1", 14), prog)
	if err != nil {
		t.Fatal(err)
	}
	if got.TotalFiles != 6 || got.SuccessCount != 6 || got.FailureCount != 0 || got.Downloaded != 6 {
		t.Fatalf("download: total %d, ok %d, failed %v", got.TotalFiles, got.SuccessCount, got.Failures)
	}
	if !slices.Equal(keysOf(got.Successful), hourKeys) {
		t.Errorf("successful %v, want %v", keysOf(got.Successful), hourKeys)
	}
	var wantBytes int64
	for _, k := range hourKeys {
		wantBytes += int64(len(e.files[k]))
	}
	if got.Bytes != wantBytes {
		t.Errorf("bytes_downloaded %d, want %d", got.Bytes, wantBytes)
	}
	if r := prog.Report(); r.FilesDone != 6 || r.FilesTotal != 6 || r.BytesDone != wantBytes || r.BytesTotal != wantBytes {
		t.Errorf("progress %+v, want 6 files and %d bytes done of total", r, wantBytes)
	}
	e.checkOnDisk(t, hourKeys...)
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
	// Nothing of the other hour or lane.
	if _, err := os.Stat(filepath.Join(e.root, "lane1", "2024", "02", "14", "15")); err == nil {
		t.Error("hour 15 was downloaded too")
	}
	if _, err := os.Stat(filepath.Join(e.root, "lane2")); err == nil {
		t.Error("lane2 was downloaded too")
	}

	// Records: downloaded, where, verified with what the object carries.
	wantAlgo := map[string]string{"a-1k.bin": "crc32c:", "b-300k.bin": "crc32:", "c-1m-nosum.bin": "crc64nvme:", "d-9m.bin": "crc64nvme:", "e-3m-sha256.bin": "sha256:", "f-empty.bin": "crc32c:"}
	recs, err := e.store.List(ctx, mongo.Query{LaneID: "lane1", From: hour(t, "lane1", 14).Start, To: hour(t, "lane1", 14).End()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		name := filepath.Base(r.Key)
		if r.Status != lanes.Downloaded || r.Attempts != 1 || r.LastError != "" || r.LocalPath != filepath.Join(d.Root(), "lane1", "2024", "02", "14", "14", name) {
			t.Errorf("record %s: %+v", name, r)
		}
		if r.Size != int64(len(e.files[r.Key])) || r.VersionID == "" {
			t.Errorf("record %s: size %d, version %q", name, r.Size, r.VersionID)
		}
		if w := wantAlgo[name]; w != "" && !strings.HasPrefix(r.Checksum, w) {
			t.Errorf("record %s verified with %q, want %s…", name, r.Checksum, w)
		}
		t.Logf("%s verified with %s", name, r.Checksum)
		if r.Checksum == "" || r.Checksum == "size-only" {
			t.Errorf("record %s: no checksum verified (%q)", name, r.Checksum)
		}
	}

	// Again: nothing is fetched, every file is reported present, as its record already says: the records are left as
	// they are.
	got, err = d.Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.SuccessCount != 6 || got.AlreadyPresent != 6 || got.Downloaded != 0 || got.Bytes != 0 {
		t.Errorf("second download: %d ok, %d present, %d downloaded, %d bytes", got.SuccessCount, got.AlreadyPresent, got.Downloaded, got.Bytes)
	}
	before := map[string]lanes.Record{}
	for _, r := range recs {
		before[r.Key] = r
	}
	for _, f := range got.Successful {
		if f.Outcome != download.OutcomeAlreadyPresent {
			t.Errorf("%s: outcome %q", f.Key, f.Outcome)
		}
		now, _ := e.store.Get(ctx, f.Key)
		if b := before[f.Key]; !now.UpdatedAt.Equal(b.UpdatedAt) || now.Attempts != b.Attempts || now.Status != lanes.Downloaded {
			t.Errorf("%s found in place, but its record changed: %+v, was %+v", f.Key, now, b)
		}
		if f.Attempts != 1 || !f.UpdatedAt.Equal(now.UpdatedAt) {
			t.Errorf("%s answered as %+v, its record is %+v", f.Key, f.Record, now)
		}
	}

	// A damaged file on disk is fetched again.
	damaged := filepath.Join(e.root, "lane1", "2024", "02", "14", "14", "b-300k.bin")
	if err := os.WriteFile(damaged, bytes.Repeat([]byte{'x'}, 300<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	// An object overwritten in the bucket: index updates its record, the download fetches the new bytes.
	e.put(t, "lane1/2024/02/14/14/a-1k.bin", 2<<10, s3types.ChecksumAlgorithmCrc32c)
	if res := e.index(t); res.Updated != 1 || res.Unchanged != 7 {
		t.Errorf("index after an overwrite: %+v, want 1 updated", res)
	}
	if r, _ := e.store.Get(ctx, p+"lane1/2024/02/14/14/a-1k.bin"); r.Status != lanes.Pending || r.Size != 2<<10 {
		t.Errorf("overwritten object's record: %+v", r)
	}
	got, err = d.Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Downloaded != 2 || got.AlreadyPresent != 4 || got.FailureCount != 0 {
		t.Errorf("after damage and overwrite: %d downloaded, %d present, failures %v", got.Downloaded, got.AlreadyPresent, got.Failures)
	}
	e.checkOnDisk(t, hourKeys...)
}

func TestObjectDeletedAfterIndexing(t *testing.T) {
	e := newEnv(t)
	for i := range 4 {
		e.put(t, fmt.Sprintf("lane1/2024/02/14/14/f%d.bin", i), 1000+i, s3types.ChecksumAlgorithmCrc32c)
	}
	e.index(t)
	gone := e.prefix + "lane1/2024/02/14/14/f2.bin"
	if _, err := e.bucket.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(e.bucket.Name), Key: aws.String(gone)}); err != nil {
		t.Fatal(err)
	}
	got, err := e.downloader(t, e.bucket.Client).Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.SuccessCount != 3 || got.FailureCount != 1 || got.Failed[0] != gone {
		t.Fatalf("got %d ok, failed %v", got.SuccessCount, got.Failures)
	}
	if reason := got.Failures[0].Reason; !strings.Contains(reason, "not found") {
		t.Errorf("reason %q does not say the object is gone", reason)
	}
	r, _ := e.store.Get(ctx, gone)
	if r.Status != lanes.Failed || !strings.Contains(r.LastError, "not found") || r.Attempts != 1 {
		t.Errorf("record of the deleted object: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(e.root, "lane1", "2024", "02", "14", "14", "f2.bin")); !os.IsNotExist(err) {
		t.Errorf("a file exists for the deleted object: %v", err)
	}
	var others []string
	for i := range 4 {
		if i != 2 {
			others = append(others, fmt.Sprintf("%slane1/2024/02/14/14/f%d.bin", e.prefix, i))
		}
	}
	e.checkOnDisk(t, others...)
}

// TestFileThatCannotBePutInPlace: the target name is taken by a folder, so the verified temp file cannot be renamed
// into place. The file fails with the reason, its temp file is gone, and the others of the hour succeed.
func TestFileThatCannotBePutInPlace(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.put(t, fmt.Sprintf("lane1/2024/02/14/14/f%d.bin", i), 2000+i, s3types.ChecksumAlgorithmCrc32c)
	}
	e.index(t)
	taken := filepath.Join(e.root, "lane1", "2024", "02", "14", "14", "f1.bin")
	if err := os.MkdirAll(filepath.Join(taken, "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := e.downloader(t, e.bucket.Client).Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil {
		t.Fatal(err)
	}
	blocked := e.prefix + "lane1/2024/02/14/14/f1.bin"
	if got.SuccessCount != 2 || got.FailureCount != 1 || got.Failed[0] != blocked {
		t.Fatalf("got %d ok, failed %v", got.SuccessCount, got.Failures)
	}
	if reason := got.Failures[0].Reason; !strings.Contains(reason, "rename into place") {
		t.Errorf("reason %q does not say the file could not be put in place", reason)
	}
	if r, _ := e.store.Get(ctx, blocked); r.Status != lanes.Failed || !strings.Contains(r.LastError, "rename") {
		t.Errorf("record of the blocked file: %+v", r)
	}
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
	e.checkOnDisk(t, e.prefix+"lane1/2024/02/14/14/f0.bin", e.prefix+"lane1/2024/02/14/14/f2.bin")
}

// cutProxy forwards TCP to the S3 server; while cutting, it closes each connection once `after` bytes of responses went
// through it; while slow, it lets responses through at about 1 MB/s; while stalling, it lets `after` bytes through and
// then nothing, holding the connection open until the client closes it.
type cutProxy struct {
	ln       net.Listener
	target   string
	after    int64
	cutting  atomic.Bool
	slow     atomic.Bool
	stalling atomic.Bool
	cuts     atomic.Int64
}

func newCutProxy(t *testing.T, target string, after int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, after: after}
	p.cutting.Store(true)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

func (p *cutProxy) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	clientGone := make(chan struct{})
	go func() { _, _ = io.Copy(up, c); up.Close(); close(clientGone) }()
	if p.stalling.Load() {
		_, _ = io.CopyN(c, up, p.after)
		<-clientGone
		return
	}
	if p.slow.Load() {
		for {
			if _, err := io.CopyN(c, up, 32<<10); err != nil {
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	if !p.cutting.Load() {
		_, _ = io.Copy(c, up)
		return
	}
	if n, _ := io.CopyN(c, up, p.after); n == p.after {
		p.cuts.Add(1) // cut mid-response: the connection just ends
	}
}

// S3 stops sending mid-body and keeps the connection open, for longer than the read timeout would wait: the download,
// with no progress for DOWNLOAD_STALL_SECONDS, gives its hour up and ends, its files failed with the reason, nothing
// partial left; with S3 back, a rerun gets every file.
func TestStalledS3GivesTheHourUp(t *testing.T) {
	e := newEnv(t)
	keys := e.putHour(t, 2, 1<<20)
	proxy := newCutProxy(t, strings.TrimPrefix(stacktest.Env(t, "S3_ENDPOINT"), "http://"), 64<<10)
	proxy.cutting.Store(false)
	proxy.stalling.Store(true)
	viaProxy, err := bucket.NewClient(ctx, "us-east-1", "http://"+proxy.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d := e.downloader(t, viaProxy, func(c *download.Config) {
		c.Attempts, c.ReadTimeout, c.Lease, c.Stall = 1, time.Hour, 900*time.Millisecond, time.Second
	})
	type answer struct {
		res *download.HourResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := d.Download(ctx, hour(t, "lane1", 14), nil)
		done <- answer{res, err}
	}()
	var got answer
	select {
	case got = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the download still hangs 30 s after S3 stalled")
	}
	if got.err != nil || got.res.FailureCount != len(keys) {
		t.Fatalf("stalled download: %+v, %v; want every file failed", got.res, got.err)
	}
	for _, f := range got.res.Failures {
		if !strings.Contains(f.Reason, "no progress for ") {
			t.Errorf("%s failed with %q, want no progress", f.Key, f.Reason)
		}
	}
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}

	proxy.stalling.Store(false)
	res, err := d.Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil || res.SuccessCount != len(keys) {
		t.Fatalf("rerun: %+v, %v", res, err)
	}
	e.checkOnDisk(t, keys...)
}

func TestTransferCutMidway(t *testing.T) {
	e := newEnv(t)
	big := "lane1/2024/02/14/14/big.bin"
	small := "lane1/2024/02/14/14/small.bin"
	e.put(t, big, 7<<20, s3types.ChecksumAlgorithmCrc32c)
	e.put(t, small, 1<<20, "")
	e.index(t)

	endpoint := stacktest.Env(t, "S3_ENDPOINT")
	proxy := newCutProxy(t, strings.TrimPrefix(endpoint, "http://"), 256<<10)
	viaProxy, err := bucket.NewClient(ctx, "us-east-1", "http://"+proxy.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	m := new(countingMetrics)
	d := e.downloader(t, viaProxy, func(c *download.Config) { c.Attempts = 2; c.Metrics = m })
	got, err := d.Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.FailureCount != 2 || proxy.cuts.Load() == 0 {
		t.Fatalf("with every transfer cut: %d failed (want 2), %d cuts; failures %v", got.FailureCount, proxy.cuts.Load(), got.Failures)
	}
	// Two files, two tries each: one retry each, both failed, none resumed.
	if got, want := m.counts(), (counts{files: map[string]int{"failed": 2}, retries: 2, hours: 1}); !got.equal(want) {
		t.Errorf("metrics told %+v, want %+v", got, want)
	}
	for _, f := range got.Failures {
		t.Logf("failure reason: %s", f.Reason)
	}
	dir := filepath.Join(e.root, "lane1", "2024", "02", "14", "14")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files visible after cut transfers: %v", entries)
	}
	for _, k := range []string{big, small} {
		r, _ := e.store.Get(ctx, e.prefix+k)
		if r.Status != lanes.Failed || r.LastError == "" {
			t.Errorf("%s after a cut transfer: %+v", k, r)
		}
	}

	// The network heals: a later call succeeds.
	proxy.cutting.Store(false)
	got, err = d.Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.SuccessCount != 2 || got.Downloaded != 2 {
		t.Fatalf("after the network healed: %d ok, failures %v", got.SuccessCount, got.Failures)
	}
	// Both files started again after the failed tries (resumed), fetched whole.
	if got, want := m.counts(), (counts{files: map[string]int{"failed": 2, "downloaded": 2}, bytes: 8 << 20, retries: 2, resumes: 2, hours: 2}); !got.equal(want) {
		t.Errorf("metrics told %+v, want %+v", got, want)
	}
	e.checkOnDisk(t, e.prefix+big, e.prefix+small)
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
	for _, k := range []string{big, small} {
		if r, _ := e.store.Get(ctx, e.prefix+k); r.Status != lanes.Downloaded || r.Attempts != 2 {
			t.Errorf("%s after success: %+v", k, r)
		}
	}
}

// TestCancelledDownload: the request goes away (client gone, shutdown) while an hour of slow files is downloading.
// Download returns promptly; every file is whole on disk or absent; no record is left saying downloading; the claims
// are let go, so that the next request fetches the rest at once instead of waiting for them to expire.
func TestCancelledDownload(t *testing.T) {
	e := newEnv(t)
	keys := e.putHour(t, 8, 256<<10)
	proxy := newCutProxy(t, strings.TrimPrefix(stacktest.Env(t, "S3_ENDPOINT"), "http://"), 0)
	proxy.cutting.Store(false)
	proxy.slow.Store(true) // ~1 MB/s per connection: 8 files take well over the second below
	viaProxy, err := bucket.NewClient(ctx, "us-east-1", "http://"+proxy.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d := e.downloader(t, viaProxy, func(c *download.Config) { c.Workers = 2 })
	shutdown := errors.New("shutdown")
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	prog := new(progress.Counter)
	var done []string // keys downloaded before the cancellation
	go func() {       // cancel once the first file is done, the next ones under way
		for prog.Report().FilesDone < 1 && cctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		cancel(shutdown)
	}()
	start := time.Now()
	got, err := d.Download(cctx, hour(t, "lane1", 14), prog)
	if !errors.Is(err, shutdown) || got != nil {
		t.Fatalf("Download = %+v, %v; want the cancellation's cause", got, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a cancelled download took %s to return", took)
	}
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
	// Every record ended: downloaded with its file whole, or failed with the cancellation's cause. None is left
	// downloading or pending.
	for _, k := range keys {
		r, _ := e.store.Get(ctx, k)
		switch {
		case r.Status == lanes.Downloaded:
			done = append(done, k)
		case r.Status != lanes.Failed || r.LastError != "shutdown":
			t.Errorf("%s after the cancellation: status %q, error %q; want failed: shutdown", k, r.Status, r.LastError)
		}
	}
	if len(done) == 0 || len(done) == len(keys) {
		t.Errorf("%d of %d downloaded before the cancellation: want some, not all", len(done), len(keys))
	}
	t.Logf("when cancelled: %d downloaded, %d not", len(done), len(keys)-len(done))
	e.checkOnDisk(t, done...)

	// The next request (network fine) gets on with it: no claim is left to wait for (they would hold for the 30 s
	// lease).
	start = time.Now()
	got, err = e.downloader(t, e.bucket.Client).Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.SuccessCount != len(keys) || got.AlreadyPresent != len(done) {
		t.Fatalf("next request: %d ok (%d already present, want %d), failures %v", got.SuccessCount, got.AlreadyPresent, len(done), got.Failures)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the next request took %s: it waited for claims of the cancelled one", took)
	}
	e.checkOnDisk(t, keys...)
}

// failingList reads the first records of an hour, then fails, like a store lost in the middle of a cursor.
type failingList struct {
	*mongo.Store
	first int
}

func (f failingList) ForHour(ctx context.Context, h lanes.Hour, fn func([]lanes.Record) error) error {
	var all []lanes.Record
	if err := f.Store.ForHour(ctx, h, func(b []lanes.Record) error { all = append(all, b...); return nil }); err != nil {
		return err
	}
	if err := fn(all[:f.first]); err != nil {
		return err
	}
	return errors.New("connection reset by peer")
}

// An hour that cannot be read whole fails the request, once the files under way have stopped: no temp file, no claim
// left behind, no record left downloading; the next request does it all.
func TestHourUnreadableMidway(t *testing.T) {
	e := newEnv(t)
	keys := e.putHour(t, 6, 3<<20)
	d := e.downloader(t, e.bucket.Client, func(c *download.Config) { c.Records = failingList{e.store, 3} })
	got, err := d.Download(ctx, hour(t, "lane1", 14), nil)
	if err == nil || !strings.Contains(err.Error(), "connection reset by peer") {
		t.Fatalf("Download = %+v, %v; want the read error", got, err)
	}
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
	for _, k := range keys {
		if r, _ := e.store.Get(ctx, k); r.Status == lanes.Downloading {
			t.Errorf("%s left downloading", k)
		}
	}
	start := time.Now()
	got, err = e.downloader(t, e.bucket.Client).Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil || got.SuccessCount != len(keys) {
		t.Fatalf("next request: %+v, %v", got, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the next request took %s: it waited for claims of the failed one", took)
	}
	e.checkOnDisk(t, keys...)
}

func TestUnsafeKeysNeverWriteOutside(t *testing.T) {
	e := newEnv(t)
	e.put(t, "lane1/2024/02/14/14/ok.bin", 100, s3types.ChecksumAlgorithmCrc32c)
	e.index(t)
	ts := time.Date(2024, 2, 14, 14, 30, 0, 0, time.UTC)
	bad := []string{
		e.prefix + "lane1/2024/02/14/14/..",
		e.prefix + "lane1/2024/02/14/14/",
		"/etc/passwd",
		e.prefix + "lane1/../../../../../../../tmp/escape.bin",
		"lane1\\..\\..\\escape.bin",
	}
	var rs []lanes.Record
	for _, k := range bad {
		rs = append(rs, lanes.Record{Key: k, LaneID: "lane1", Timestamp: ts, Size: -1})
	}
	if _, err := e.store.Register(ctx, rs, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Records put in by hand, as the seed's users did: a lane id that is a path, in the hour of lane "..".
	for _, lane := range []string{"..", "../.."} {
		if _, err := e.db.Records.InsertOne(ctx, bson.D{
			{Key: "s3_key", Value: e.prefix + "lane1/2024/02/14/14/ok.bin-" + lane}, {Key: "lane_id", Value: lane},
			{Key: "timestamp", Value: ts}, {Key: "status", Value: "pending"},
		}); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink planted in the downloads folder, pointing outside it.
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(e.root, "lane1", "2024", "02", "14"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(e.root, "lane1", "2024", "02", "14", "14")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, filepath.Dir(e.root))

	d := e.downloader(t, e.bucket.Client)
	got, err := d.Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.SuccessCount != 0 || got.FailureCount != len(bad)+1 {
		t.Errorf("got %d ok, %d failed; want all %d failed: %v", got.SuccessCount, got.FailureCount, len(bad)+1, got.Failures)
	}
	for _, f := range got.Failures {
		if !strings.Contains(f.Key, "ok.bin") && !strings.Contains(f.Reason, "unsafe key") {
			t.Errorf("%q failed for %q, want an unsafe key", f.Key, f.Reason)
		}
		r, _ := e.store.Get(ctx, f.Key)
		if r.Status != lanes.Failed || r.LastError == "" {
			t.Errorf("record %q: %+v", f.Key, r)
		}
	}
	for _, lane := range []string{"..", "../.."} {
		if _, err := d.Download(ctx, lanes.Hour{LaneID: lane, Start: ts.Truncate(time.Hour)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written through the symlink, outside DOWNLOAD_PATH: %v", entries)
	}
	if after := snapshot(t, filepath.Dir(e.root)); !slices.Equal(before, after) {
		t.Errorf("files around DOWNLOAD_PATH changed:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := os.Stat("/tmp/escape.bin"); err == nil {
		t.Error("/tmp/escape.bin was written")
	}
}

// TestSameLocalPath indexes two objects whose files would have the same path (the same lane hour and name under two
// prefixes): one is downloaded, the other fails, naming it, and never overwrites it; so again on resume.
func TestSameLocalPath(t *testing.T) {
	e := newEnv(t)
	e.put(t, "a/lane1/2024/02/14/14/x.bin", 3000, s3types.ChecksumAlgorithmCrc32c)
	e.put(t, "b/lane1/2024/02/14/14/x.bin", 5000, s3types.ChecksumAlgorithmCrc32c)
	if got := e.index(t); got.Added != 2 {
		t.Fatalf("indexed %+v, want 2 records", got)
	}
	d := e.downloader(t, e.bucket.Client)
	path := filepath.Join(e.root, "lane1", "2024", "02", "14", "14", "x.bin")
	var winner string
	for run, outcome := range []string{download.OutcomeDownloaded, download.OutcomeAlreadyPresent} {
		got, err := d.Download(ctx, hour(t, "lane1", 14), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.SuccessCount != 1 || got.FailureCount != 1 {
			t.Fatalf("run %d: %d ok, %d failed, want 1 and 1: %+v", run, got.SuccessCount, got.FailureCount, got)
		}
		ok, failed := got.Successful[0], got.Failures[0]
		if ok.Outcome != outcome {
			t.Errorf("run %d: %s %s, want %s", run, ok.Key, ok.Outcome, outcome)
		}
		if run == 0 {
			winner = ok.Key
			if want := e.prefix + "a/lane1/2024/02/14/14/x.bin"; winner != want {
				t.Errorf("%s downloaded, want %s: of one timestamp, the first key wins", winner, want)
			}
		} else if ok.Key != winner {
			t.Errorf("run %d: %s downloaded, then %s", run, winner, ok.Key)
		}
		if !strings.Contains(failed.Reason, "local path") || !strings.Contains(failed.Reason, winner) {
			t.Errorf("run %d: %s failed for %q, want the shared local path and %s named", run, failed.Key, failed.Reason, winner)
		}
		if r, _ := e.store.Get(ctx, failed.Key); r.Status != lanes.Failed || r.LastError != failed.Reason {
			t.Errorf("run %d: record of %s: %+v", run, failed.Key, r)
		}
		if b, err := os.ReadFile(path); err != nil || sum(b) != sum(e.files[winner]) {
			t.Errorf("run %d: %s holds %d bytes that are not %s's (%v)", run, path, len(b), winner, err)
		}
	}
}

// snapshot lists every path below dir (not following symlinks).
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestConcurrentDownloads runs two downloaders (two instances of the service, sharing the store and the folder) on the
// same hour at once: every file is fetched exactly once, both answer success, the files are whole.
func TestConcurrentDownloads(t *testing.T) {
	e := newEnv(t)
	var keys []string
	for i := range 12 {
		size := 200<<10 + i*1000
		if i%4 == 0 {
			size = 5 << 20 // ranged
		}
		k := fmt.Sprintf("lane1/2024/02/14/14/f%02d.bin", i)
		e.put(t, k, size, s3types.ChecksumAlgorithmCrc32c)
		keys = append(keys, e.prefix+k)
	}
	e.index(t)
	d1 := e.downloader(t, e.bucket.Client)
	d2 := e.downloader(t, e.bucket.Client)
	var wg sync.WaitGroup
	results := make([]*download.HourResult, 2)
	for i, d := range []*download.Downloader{d1, d2} {
		wg.Go(func() {
			r, err := d.Download(ctx, hour(t, "lane1", 14), nil)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	fetched := map[string]int{}
	for i, r := range results {
		if r.SuccessCount != 12 || r.FailureCount != 0 {
			t.Errorf("downloader %d: %d ok, failures %v", i, r.SuccessCount, r.Failures)
		}
		for _, f := range r.Successful {
			if f.Outcome == download.OutcomeDownloaded {
				fetched[f.Key]++
			}
		}
	}
	for _, k := range keys {
		if fetched[k] != 1 {
			t.Errorf("%s fetched %d times, want once", k, fetched[k])
		}
	}
	t.Logf("downloader 1 fetched %d, downloader 2 fetched %d", results[0].Downloaded, results[1].Downloaded)
	e.checkOnDisk(t, keys...)
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
}

// TestStatusWhileDownloading watches a slow download: its record says downloading while it runs (written within the
// recorder's batch delay), then downloaded, with one attempt.
func TestStatusWhileDownloading(t *testing.T) {
	e := newEnv(t)
	key := "lane1/2024/02/14/14/slow.bin"
	e.put(t, key, 2<<20, s3types.ChecksumAlgorithmCrc32c)
	e.index(t)
	proxy := newCutProxy(t, strings.TrimPrefix(stacktest.Env(t, "S3_ENDPOINT"), "http://"), 0)
	proxy.cutting.Store(false)
	proxy.slow.Store(true)
	viaProxy, err := bucket.NewClient(ctx, "us-east-1", "http://"+proxy.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	d := e.downloader(t, viaProxy)
	done := make(chan *download.HourResult, 1)
	prog := new(progress.Counter)
	go func() {
		res, err := d.Download(ctx, hour(t, "lane1", 14), prog)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	seen := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !seen; time.Sleep(20 * time.Millisecond) {
		r, _ := e.store.Get(ctx, e.prefix+key)
		seen = r.Status == lanes.Downloading && r.Attempts == 1
	}
	if !seen {
		t.Error("the record never said downloading while the file was being fetched")
	}
	if r := prog.Report(); r.BytesDone <= 0 || r.BytesDone >= 2<<20 {
		t.Logf("progress mid-way: %+v", r) // informative: timing-dependent
	}
	res := <-done
	if res == nil || res.Downloaded != 1 {
		t.Fatalf("slow download: %+v", res)
	}
	if r, _ := e.store.Get(ctx, e.prefix+key); r.Status != lanes.Downloaded || r.Attempts != 1 {
		t.Errorf("after the slow download: %+v", r)
	}
	e.checkOnDisk(t, e.prefix+key)
}

// A file whose name is as long as a name can be (255 bytes) downloads: its temp file's name is short. Temp files left
// in the hour's folder by a download that died are removed when the hour is next claimed; other files stay.
func TestLongNameAndStaleTempFiles(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("n", 251) + ".bin"
	key := e.prefix + "lane1/2024/02/14/14/" + long
	e.put(t, "lane1/2024/02/14/14/"+long, 3000, s3types.ChecksumAlgorithmCrc32c)
	e.index(t)
	dir := filepath.Join(e.root, "lane1", "2024", "02", "14", "14")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := []string{".dl-0123456789abcdef.part", ".x.bin.part-0123456789ab"} // this release's, and the last one's
	kept := []string{".dl-notours.part", "notes.txt"}
	for _, n := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("left behind"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.downloader(t, e.bucket.Client).Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil || got.SuccessCount != 1 {
		t.Fatalf("Download = %+v, %v", got, err)
	}
	e.checkOnDisk(t, key)
	for _, n := range stale {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale temp file %s: %v, want removed", n, err)
		}
	}
	for _, n := range kept {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s, not a temp file of ours: %v, want kept", n, err)
		}
	}
}
