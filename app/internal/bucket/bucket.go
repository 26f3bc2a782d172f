// Package bucket reads objects from S3 or an S3-compatible server with the AWS SDK for Go v2.
package bucket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// NewClient returns an S3 client for region. endpoint, when set, points it at an S3-compatible server with path-style
// addressing (local runs); otherwise AWS's endpoints and the default credential chain (the instance role) apply.
//
// The client does not ask S3 for an object's checksum to check its body against (the SDK's default computes a CRC of
// every body S3 sends one for). Ingestion decodes the bytes as they come, so a mismatch found at the end would only
// fail a file already read; TLS already rejects bytes changed on the way, and S3 checks what it stores. The CRC cost
// what the reads are billed by on Lambda: S3 gives objects written without a checksum a CRC-64/NVME, which Go computes
// without hardware help, ~0.7 CPU-s per GB (README, make bench-backfill). Downloads check each file's checksum
// themselves (download/fetch), with a client of their own.
func NewClient(ctx context.Context, region, endpoint string) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
	}), nil
}

// Object is one listed object.
type Object struct {
	Key          string
	ETag         string // without quotes
	Size         int64
	LastModified time.Time
}

// Bucket is one bucket of a client.
type Bucket struct {
	Client *s3.Client
	Name   string
	// Stall, when positive, fails a read of Open with ErrStalled when S3 sends no byte for this long
	// (S3_STALL_SECONDS).
	Stall time.Duration
}

// ErrStalled means S3 sent nothing for Bucket.Stall: the dependency is slow, the object is not at fault.
var ErrStalled = errors.New("s3 sent no data within S3_STALL_SECONDS")

// List calls fn with each page of objects under prefix, in key order.
//
// Keys are asked for URL-encoded: a key may hold characters XML 1.0 cannot carry (control characters), which would
// break the page that lists it. The SDK does not decode them (aws-sdk-go-v2#1676), so List does, when the server says
// it encoded them (some S3-compatible servers ignore the request).
func (b Bucket) List(ctx context.Context, prefix string, fn func([]Object) error) error {
	p := s3.NewListObjectsV2Paginator(b.Client, &s3.ListObjectsV2Input{
		Bucket:       aws.String(b.Name),
		Prefix:       aws.String(prefix),
		EncodingType: types.EncodingTypeUrl,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", b.Name, prefix, err)
		}
		objs := make([]Object, 0, len(page.Contents))
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if page.EncodingType == types.EncodingTypeUrl {
				if key, err = url.QueryUnescape(key); err != nil {
					return fmt.Errorf("list s3://%s/%s: key %q: %w", b.Name, prefix, aws.ToString(o.Key), err)
				}
			}
			if strings.HasSuffix(key, "/") {
				continue // folder marker
			}
			objs = append(objs, Object{
				Key:          key,
				ETag:         strings.Trim(aws.ToString(o.ETag), `"`),
				Size:         aws.ToInt64(o.Size),
				LastModified: aws.ToTime(o.LastModified),
			})
		}
		if err := fn(objs); err != nil {
			return err
		}
	}
	return nil
}

// Open starts reading one object. If etag is set, the read fails unless the object still has it, so what is read is
// what was listed. The returned version id is empty when the bucket is not versioned.
//
// With Bucket.Stall set, waiting for the answer and each read of the body fail with ErrStalled after that long without
// a byte; time between reads (the caller's) does not count.
func (b Bucket) Open(ctx context.Context, key, etag string) (body io.ReadCloser, versionID string, err error) {
	in := &s3.GetObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key)}
	if etag != "" {
		in.IfMatch = aws.String(`"` + etag + `"`)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{stall: b.Stall, cancel: cancel}
	w.start()
	out, err := b.Client.GetObject(ctx, in)
	if w.stop() && err != nil {
		err = ErrStalled
	}
	if err != nil {
		cancel(nil)
		return nil, "", fmt.Errorf("get s3://%s/%s: %w", b.Name, key, err)
	}
	v := aws.ToString(out.VersionId)
	if v == "null" {
		v = ""
	}
	return &stallReader{r: out.Body, w: w}, v, nil
}

// watchdog cancels a request when a wait between start and stop lasts longer than stall (never when stall is zero).
type watchdog struct {
	stall  time.Duration
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

func (w *watchdog) start() {
	if w.stall <= 0 {
		return
	}
	if w.timer == nil {
		w.timer = time.AfterFunc(w.stall, func() { w.cancel(ErrStalled) })
		return
	}
	w.timer.Reset(w.stall)
}

// stop reports whether the wait stalled (the request is then cancelled).
func (w *watchdog) stop() bool { return w.timer != nil && !w.timer.Stop() }

// stallReader is an object's body whose reads are watched.
type stallReader struct {
	r io.ReadCloser
	w *watchdog
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.w.start()
	n, err := s.r.Read(p)
	if s.w.stop() {
		return n, ErrStalled
	}
	return n, err
}

func (s *stallReader) Close() error {
	err := s.r.Close()
	s.w.cancel(nil)
	return err
}

// requestCodes are the S3 error codes with a 4xx status that concern the request or the account, not the object: they
// would meet every object.
var requestCodes = map[string]bool{
	"AccountProblem": true, "AllAccessDisabled": true, "AuthorizationHeaderMalformed": true, "ExpiredToken": true,
	"InvalidAccessKeyId": true, "InvalidBucketName": true, "InvalidToken": true, "MissingSecurityHeader": true,
	"NoSuchBucket": true, "RequestTimeout": true, "RequestTimeTooSkewed": true, "SignatureDoesNotMatch": true,
	"SlowDown": true, "Throttling": true, "ThrottlingException": true, "TokenRefreshRequired": true,
}

// Refusal returns S3's reason when err is S3 refusing one object for something of the object's own (a 4xx answer such
// as AccessDenied from a KMS key the role may not use, or InvalidObjectState for an archived object), and reports
// whether it is. Throttling (429, SlowDown), a request timeout and errors of the credentials or the bucket are not:
// they concern every object alike. Neither are 5xx answers, timeouts and broken connections.
func Refusal(err error) (string, bool) {
	var api smithy.APIError
	var resp *smithyhttp.ResponseError
	if !errors.As(err, &api) || !errors.As(err, &resp) {
		return "", false
	}
	status := resp.HTTPStatusCode()
	if status < 400 || status > 499 || status == 408 || status == 429 || requestCodes[api.ErrorCode()] {
		return "", false
	}
	return fmt.Sprintf("S3 refused it: %s: %s (HTTP %d)", api.ErrorCode(), api.ErrorMessage(), status), true
}

// Check returns an error unless the bucket exists and is readable.
func (b Bucket) Check(ctx context.Context) error {
	_, err := b.Client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.Name)})
	if err != nil {
		return fmt.Errorf("s3 bucket %s: %w", b.Name, err)
	}
	return nil
}
