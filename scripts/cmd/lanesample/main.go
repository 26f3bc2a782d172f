// Command lanesample puts sample lane files in the local bucket, has the running service index them, and prints how to
// download an hour (make dev).
//
//	lanesample -api https://localhost:8443 -cacert .dev/tls/cert.pem
//
// It reads the local stack's variables (.dev/env): S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
// SOURCE_BUCKET (or S3_BUCKET) and API_TOKEN.
//
// The files are laid out as lanes/{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file}: two lanes, four hours of 2024-02-14, sizes
// from 1 KiB to 64 MiB, uploaded with a CRC32C checksum. Their bytes are derived from their key, so a rerun finds them
// in place (same size) and uploads nothing, and the index adds nothing.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

const (
	kiB = 1 << 10
	miB = 1 << 20
)

// samples are the files: lane, hour of 2024-02-14, name, size.
var samples = []struct {
	lane string
	hour int
	name string
	size int
}{
	{"lane1", 13, "frame-0001.bin", 1 * kiB},
	{"lane1", 13, "frame-0002.bin", 256 * kiB},
	{"lane1", 14, "frame-0001.bin", 1 * kiB},
	{"lane1", 14, "frame-0002.bin", 100 * kiB},
	{"lane1", 14, "frame-0003.bin", 1 * miB},
	{"lane1", 14, "video-0001.bin", 8 * miB},
	{"lane1", 14, "video-0002.bin", 64 * miB},
	{"lane1", 15, "frame-0001.bin", 4 * kiB},
	{"lane1", 15, "video-0001.bin", 2 * miB},
	{"lane2", 14, "frame-0001.bin", 16 * kiB},
	{"lane2", 14, "video-0001.bin", 4 * miB},
	{"lane2", 14, "video-0002.bin", 32 * miB},
	{"lane2", 16, "frame-0001.bin", 1 * kiB},
}

func main() {
	api := flag.String("api", "https://localhost:8443", "the running service, to index the files (empty: upload only)")
	cacert := flag.String("cacert", "", "PEM certificate the service's TLS certificate is checked against (the dev self-signed one)")
	prefix := flag.String("prefix", "lanes/", "key prefix of the sample files")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *api, *cacert, *prefix, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lanesample:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, api, cacert, prefix string, out io.Writer) error {
	env := func(k string) string { return strings.TrimSpace(os.Getenv(k)) }
	bucket := env("SOURCE_BUCKET")
	if bucket == "" {
		bucket = env("S3_BUCKET")
	}
	if env("S3_ENDPOINT") == "" || env("AWS_ACCESS_KEY_ID") == "" || bucket == "" {
		return errors.New("S3_ENDPOINT, AWS_ACCESS_KEY_ID and SOURCE_BUCKET or S3_BUCKET must be set (the local stack's .dev/env)")
	}
	region := env("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	c := s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(env("S3_ENDPOINT")),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), ""),
	})

	uploaded, total := 0, 0
	for _, f := range samples {
		key := fmt.Sprintf("%s%s/2024/02/14/%02d/%s", prefix, f.lane, f.hour, f.name)
		total += f.size
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err == nil && aws.ToInt64(head.ContentLength) == int64(f.size) {
			continue // in place from an earlier run: same key, same bytes
		}
		var ae smithy.APIError
		if err != nil && !(errors.As(err, &ae) && (ae.ErrorCode() == "NotFound" || ae.ErrorCode() == "NoSuchKey")) {
			return fmt.Errorf("head s3://%s/%s: %w", bucket, key, err)
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(content(key, f.size)),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
		}); err != nil {
			return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
		}
		uploaded++
	}
	fmt.Fprintf(out, "lane samples: %d files, %.0f MiB under s3://%s/%s (%d uploaded now)\n", len(samples), float64(total)/miB, bucket, prefix, uploaded)
	if api == "" {
		return nil
	}

	client, err := httpClient(cacert)
	if err != nil {
		return err
	}
	var res struct {
		Objects   int `json:"objects"`
		Added     int `json:"added"`
		Updated   int `json:"updated"`
		Unchanged int `json:"unchanged"`
		Skipped   int `json:"skipped_count"`
	}
	if err := post(ctx, client, api+"/api/v1/files/index", env("API_TOKEN"), map[string]string{"prefix": prefix}, &res); err != nil {
		return err
	}
	fmt.Fprintf(out, "indexed: %d objects, %d added, %d updated, %d unchanged, %d skipped\n", res.Objects, res.Added, res.Updated, res.Unchanged, res.Skipped)

	tlsOpt := "-k"
	if cacert != "" {
		tlsOpt = "--cacert " + cacert
	}
	fmt.Fprintf(out, `
Download a lane hour (5 files, 1 KiB to 64 MiB; a second call finds them in place):
  curl %[1]s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"lane_id": "lane1", "hour": 14, "date": "2024-02-14T00:00:00Z"}' %[2]s/api/v1/download
  curl %[1]s '%[2]s/api/v1/files?lane_id=lane1&date=2024-02-14&hour=14'
`, tlsOpt, api)
	return nil
}

// content is the bytes of a sample file: pseudo-random, derived from its key.
func content(key string, n int) []byte {
	h := fnv.New64a()
	h.Write([]byte(key))
	rng := rand.New(rand.NewPCG(h.Sum64(), uint64(n)))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func httpClient(cacert string) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", cacert)
		}
		cfg.RootCAs = pool
	}
	return &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

// post sends body as JSON with the bearer token, retrying for 30 s while the service is not answering yet.
func post(ctx context.Context, c *http.Client, url, token string, body, v any) error {
	raw, _ := json.Marshal(body)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("POST %s: %w", url, err)
			}
			time.Sleep(500 * time.Millisecond)
			continue
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("POST %s: %s: %s", url, resp.Status, data)
		}
		return json.Unmarshal(data, v)
	}
}
