package seed

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aircraftdata/platform/scripts/internal/s3local"
)

// TestUploadIsIdempotent runs under `devstack exec` (AIRCRAFT_STACK=1): a second upload of the same folder adds no
// object versions.
func TestUploadIsIdempotent(t *testing.T) {
	if os.Getenv("AIRCRAFT_STACK") != "1" {
		t.Skip("needs the local stack: run under `devstack exec`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dir := t.TempDir()
	files := map[string]string{"a.json": `{"now":1}`, "b.json.gz": `{"now":2}`, "README.md": "docs", "bad/c.json": "{"}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	c := s3local.Client()
	bucket := "seed-test-" + strings.ToLower(rand.Text()[:10])
	if err := s3local.EnsureVersionedBucket(ctx, c, bucket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emptyAndDelete(t, c, bucket) })

	for i, want := range []Result{{Uploaded: 2}, {Unchanged: 2}} {
		got, err := Upload(ctx, c, bucket, dir, "raw/", SkipReadsb)
		if err != nil || got != want {
			t.Fatalf("upload %d = %+v, %v; want %+v", i+1, got, err, want)
		}
	}

	out, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, v := range out.Versions {
		keys = append(keys, aws.ToString(v.Key))
	}
	if strings.Join(keys, ",") != "raw/a.json,raw/b.json.gz" {
		t.Errorf("object versions = %q; want one each of raw/a.json and raw/b.json.gz", keys)
	}

	// A changed file is uploaded again (as a new version).
	if err := os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"now":3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := Upload(ctx, c, bucket, dir, "raw/", SkipReadsb); err != nil || got != (Result{Uploaded: 1, Unchanged: 1}) {
		t.Errorf("upload after a change = %+v, %v; want 1 uploaded, 1 unchanged", got, err)
	}
}

func emptyAndDelete(t *testing.T, c *s3.Client, bucket string) {
	ctx := context.Background()
	out, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Log(err)
		return
	}
	var ids []types.ObjectIdentifier
	for _, v := range out.Versions {
		ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
	}
	for _, m := range out.DeleteMarkers {
		ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
	}
	for _, id := range ids {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: id.Key, VersionId: id.VersionId}); err != nil {
			t.Log(err)
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Log(err)
	}
}
