package local

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aircraftdata/platform/test/e2e"
)

// TestDownloadAfterSIGKILL kills aircraftd (SIGKILL, as the kernel's OOM killer or a lost instance would) while it
// downloads a lane hour: after a restart, a rerun of the hour waits for the killed process's claim to run out
// (DOWNLOAD_CLAIM_LEASE_SECONDS=5 here), then completes with every file's bytes those uploaded, and no temporary file
// is left (the preallocated ones the killed process left are swept when the hour is claimed).
func TestDownloadAfterSIGKILL(t *testing.T) {
	StackEnv(t, "DB_ADMIN_URL")
	// The killed process's claim holds the hour this long.
	stack, svc, tg := newService(t, map[string]string{"DOWNLOAD_CLAIM_LEASE_SECONDS": "5"})

	// Large files, so that the kill lands mid-file, and small ones.
	files := map[string][]byte{}
	for i, size := range []int{96 << 20, 96 << 20, 300 << 10, 300 << 10} {
		data := make([]byte, size)
		r := mrand.New(mrand.NewPCG(uint64(i), 7))
		for j := 0; j+8 <= size; j += 8 {
			v := r.Uint64()
			for k := range 8 {
				data[j+k] = byte(v >> (8 * k))
			}
		}
		k := fmt.Sprintf("lanes/lane1/2024/02/14/14/f%d.bin", i)
		if _, err := stack.S3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(stack.Bucket), Key: aws.String(k),
			Body: bytes.NewReader(data), ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c}); err != nil {
			t.Fatal(err)
		}
		files[k] = data
	}
	hourReq := map[string]any{"lane_id": "lane1", "hour": 14, "date": "2024-02-14"}
	dir := filepath.Join(svc.Downloads, "lane1", "2024", "02", "14", "14")
	temps := func() []string {
		var out []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				out = append(out, e.Name())
			}
		}
		return out
	}

	startService(t, svc)
	if resp := tg.MustCall(t, http.MethodPost, "/api/v1/files/index", map[string]any{"prefix": "lanes/"}, e2e.WithToken); resp.Status != http.StatusOK {
		t.Fatalf("index: %s", resp)
	}
	if resp := tg.MustCall(t, http.MethodPost, "/api/v1/download?async=true", hourReq, e2e.WithToken); resp.Status != http.StatusAccepted {
		t.Fatalf("download: %s", resp)
	}
	for deadline := time.Now().Add(time.Minute); len(temps()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no temp file appeared within a minute:\n%s", svc.Tail(20))
		}
	}
	if err := syscall.Kill(-svc.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-svc.Done()
	t.Logf("killed mid-download; left behind: %v", temps())

	// The rerun waits for the killed process's claim to run out (5 s), then takes the hour over.
	startService(t, svc)
	resp := tg.MustCall(t, http.MethodPost, "/api/v1/download", hourReq, e2e.WithToken)
	var res struct {
		SuccessCount int `json:"success_count"`
		Successful   []struct {
			Key      string `json:"s3_key"`
			Checksum string `json:"checksum"`
		} `json:"successful"`
		Failures []any `json:"failures"`
	}
	if resp.Status != http.StatusOK || resp.JSON(&res) != nil || res.SuccessCount != len(files) {
		t.Fatalf("rerun after the restart: %s", resp)
	}
	for _, f := range res.Successful {
		if err := e2e.VerifyChecksum(f.Checksum, files[f.Key]); err != nil {
			t.Errorf("%s: %v", f.Key, err)
		}
	}
	for k, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.Base(k)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s on disk: %d of %d bytes, %v", k, len(got), len(want), err)
		}
	}
	if l := temps(); len(l) > 0 {
		t.Errorf("temp files left after the rerun: %v", l)
	}
	if err := svc.Stop(30 * time.Second); err != nil {
		t.Errorf("%v\n%s", err, svc.Tail(20))
	}
}
