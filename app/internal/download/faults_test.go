//go:build linux

package download_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
	"github.com/aircraftdata/platform/app/internal/progress"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// ownS3 starts a versitygw of the test's own (built from the version the local stack pins in scripts/go.mod), so that
// it can be frozen without touching the shared one, and returns a versioned bucket on it and the server's process.
func ownS3(t *testing.T) (bucket.Bucket, *os.Process) {
	t.Helper()
	stacktest.Env(t, "S3_ENDPOINT") // the stack's credentials are in the environment
	dir := t.TempDir()
	bin := filepath.Join(dir, "versitygw")
	build := exec.Command("go", "build", "-o", bin, "github.com/versity/versitygw/cmd/versitygw")
	build.Dir = filepath.Join("..", "..", "..", "scripts")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build versitygw: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data, versions := filepath.Join(dir, "data"), filepath.Join(dir, "versions")
	for _, d := range []string{data, versions} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "--access", os.Getenv("AWS_ACCESS_KEY_ID"), "--secret", os.Getenv("AWS_SECRET_ACCESS_KEY"),
		"--region", "us-east-1", "--port", addr, "--quiet", "--keep-alive", "posix", "--versioning-dir", versions, data)
	for _, kv := range os.Environ() { // it also reads settings from ROOT_* and VGW_* variables
		if !strings.HasPrefix(kv, "ROOT_") && !strings.HasPrefix(kv, "VGW_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c, err := bucket.NewClient(ctx, "us-east-1", "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	name := stacktest.Name("frozen-")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("own versitygw does not answer: %v", err)
		}
	}
	return bucket.Bucket{Client: c, Name: name}, cmd.Process
}

// The S3 server freezes (SIGSTOP) mid-download: at no time is there a partial file under a final name; the download
// ends by its own timeouts with the files it could not finish failed; once the server is back, a rerun completes with
// every file's bytes those uploaded.
func TestS3FrozenMidDownload(t *testing.T) {
	b, server := ownS3(t)
	e := &env{store: mongotest.Store(t), bucket: b, files: map[string][]byte{}, root: filepath.Join(t.TempDir(), "downloads")}
	e.prefix = stacktest.Name("lanes/frozen") + "/"
	var keys []string
	for i := range 6 {
		size := 300 << 10
		if i%2 == 0 {
			size = 6 << 20 // ranged
		}
		k := fmt.Sprintf("lane1/2024/02/14/14/f%d.bin", i)
		e.put(t, k, size, s3types.ChecksumAlgorithmCrc32c)
		keys = append(keys, e.prefix+k)
	}
	e.index(t)
	d := e.downloader(t, b.Client, func(c *download.Config) {
		c.Workers, c.Attempts, c.ReadTimeout = 2, 1, 500*time.Millisecond
		c.Log = slog.New(slog.DiscardHandler)
	})

	// Every file under a final name is whole: its bytes are the object's.
	dir := filepath.Join(e.root, "lane1", "2024", "02", "14", "14")
	checkFinalNames := func(when string) {
		t.Helper()
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			k := e.prefix + "lane1/2024/02/14/14/" + en.Name()
			want, ok := e.files[k]
			if !ok {
				continue // a temp file
			}
			if got, err := os.ReadFile(filepath.Join(dir, en.Name())); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s under its final name has %d of %d bytes, or other bytes (%v)", when, en.Name(), len(got), len(want), err)
			}
		}
	}

	prog := new(progress.Counter)
	done := make(chan error, 1)
	go func() {
		_, err := d.Download(ctx, hour(t, "lane1", 14), prog)
		done <- err
	}()
	for prog.Report().BytesDone < 1<<20 {
		time.Sleep(2 * time.Millisecond)
	}
	if err := server.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := prog.Report()
	t.Logf("frozen at %d of %d bytes, %d of %d files", frozen.BytesDone, frozen.BytesTotal, frozen.FilesDone, frozen.FilesTotal)
	for range 10 { // while frozen
		checkFinalNames("while frozen")
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Download: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the download still hangs 2 minutes after the server froze")
	}
	checkFinalNames("after the frozen download")
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}

	if err := server.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	got, err := d.Download(ctx, hour(t, "lane1", 14), nil)
	if err != nil || got.SuccessCount != len(keys) {
		t.Fatalf("rerun: %+v, %v", got, err)
	}
	for _, f := range got.Successful {
		if f.Checksum == "" || f.Checksum == "size-only" {
			t.Errorf("%s: verified with %q", f.Key, f.Checksum)
		}
	}
	e.checkOnDisk(t, keys...)
	if l := leftovers(t, e.root); len(l) > 0 {
		t.Errorf("temp files left after the rerun: %v", l)
	}
}
