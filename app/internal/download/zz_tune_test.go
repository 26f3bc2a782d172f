package download_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo"
)

func TestTune(t *testing.T) {
	if os.Getenv("TUNE") == "" {
		t.Skip()
	}
	s3c, _ := bucket.NewClient(ctx, "us-east-1", os.Getenv("S3_ENDPOINT"))
	b := bucket.Bucket{Client: s3c, Name: "tune-download"}
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.Name)}); err != nil {
		s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.Name)})
		data := make([]byte, 1<<20)
		for i := range 200 {
			for j := range data { data[j] = byte(rand.Uint32()) }
			if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b.Name), Key: aws.String(fmt.Sprintf("t/lane1/2024/01/01/00/f%03d.bin", i)), Body: bytes.NewReader(data)}); err != nil { t.Fatal(err) }
		}
		f, _ := os.CreateTemp("", "big")
		buf := make([]byte, 1<<20)
		for range 1024 { for j := range buf { buf[j] = byte(rand.Uint32()) }; f.Write(buf) }
		f.Seek(0, 0)
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b.Name), Key: aws.String("t/lane1/2024/01/01/01/big.bin"), Body: f}); err != nil { t.Fatal(err) }
		f.Close(); os.Remove(f.Name())
	}
	st, err := mongo.Open(ctx, mongo.Options{URL: os.Getenv("MONGODB_URL"), Database: os.Getenv("TUNEDB")})
	if err != nil { t.Fatal(err) }
	(&download.Indexer{Store: st, Bucket: b}).Index(ctx, "t/", nil)
	root := "/tmp/tune/ours"
	part, _ := strconv.Atoi(os.Getenv("PART")); conc, _ := strconv.Atoi(os.Getenv("CONC")); workers, _ := strconv.Atoi(os.Getenv("WORKERS"))
	var store download.Store = st
	if os.Getenv("MEM") != "" {
		store = &memStore{st: st}
	} else {
		store = &timedStore{st: st, t: t}
	}
	d, err := download.New(download.Config{Store: store, S3: s3c, Bucket: b.Name, Root: root, PartSize: int64(part) << 20, PartConcurrency: conc, Workers: workers, Durable: os.Getenv("DURABLE") != ""})
	if err != nil { t.Fatal(err) }
	for _, hr := range hours() {
		h, _ := lanes.NewHour("lane1", "2024-01-01", hr)
		for run := range 4 {
			os.RemoveAll(root + "/lane1")
			s5 := "/tmp/tune/s5"
			os.RemoveAll(s5)
			t0 := time.Now()
			res, err := d.Download(ctx, h, nil)
			if err != nil || res.FailureCount > 0 { t.Fatal(err, res.Failures) }
			ours := time.Since(t0)
			t0 = time.Now()
			cmd := exec.Command("/tmp/tune/s5cmd", "--endpoint-url", os.Getenv("S3_ENDPOINT"), "cp", fmt.Sprintf("s3://%s/t/lane1/2024/01/01/%02d/*", b.Name, hr), s5+"/")
			if out, err := cmd.CombinedOutput(); err != nil { t.Fatal(string(out)) }
			s5d := time.Since(t0)
			mb := float64(res.Bytes) / 1e6
			t.Logf("hour %d run %d: ours %.0f MB/s, s5cmd %.0f MB/s, ratio %.2f", hr, run, mb/ours.Seconds(), mb/s5d.Seconds(), s5d.Seconds()/ours.Seconds())
		}
	}
}

type memStore struct{ st *mongo.Store }

func (m *memStore) ForHour(ctx context.Context, h lanes.Hour) ([]lanes.Record, error) { return m.st.ForHour(ctx, h) }
func (m *memStore) Claim(ctx context.Context, keys []string, owner string, now time.Time, lease time.Duration) ([]string, []string, error) {
	return keys, nil, nil
}
func (m *memStore) Renew(ctx context.Context, owner string, until time.Time) error                  { return nil }
func (m *memStore) Update(ctx context.Context, owner string, cs []lanes.Change, now time.Time) error { return nil }
func (m *memStore) Release(ctx context.Context, owner string, keys []string)                        {}

type timedStore struct {
	st *mongo.Store
	t  *testing.T
}

func (m *timedStore) ForHour(ctx context.Context, h lanes.Hour) ([]lanes.Record, error) {
	t0 := time.Now()
	defer func() { m.t.Logf("ForHour %v", time.Since(t0)) }()
	return m.st.ForHour(ctx, h)
}
func (m *timedStore) Claim(ctx context.Context, keys []string, owner string, now time.Time, lease time.Duration) ([]string, []string, error) {
	t0 := time.Now()
	defer func() { m.t.Logf("Claim %d %v", len(keys), time.Since(t0)) }()
	return m.st.Claim(ctx, keys, owner, now, lease)
}
func (m *timedStore) Renew(ctx context.Context, owner string, until time.Time) error { return m.st.Renew(ctx, owner, until) }
func (m *timedStore) Update(ctx context.Context, owner string, cs []lanes.Change, now time.Time) error {
	t0 := time.Now()
	defer func() { m.t.Logf("Update %d %v", len(cs), time.Since(t0)) }()
	return m.st.Update(ctx, owner, cs, now)
}
func (m *timedStore) Release(ctx context.Context, owner string, keys []string) { m.st.Release(ctx, owner, keys) }

func hours() []int {
	if os.Getenv("HOURS") == "0" {
		return []int{0}
	}
	if os.Getenv("HOURS") == "1" {
		return []int{1}
	}
	return []int{0, 1}
}
