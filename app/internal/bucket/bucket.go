// Package bucket reads objects from S3 or an S3-compatible server with the
// AWS SDK for Go v2.
package bucket

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// NewClient returns an S3 client for region. endpoint, when set, points it at
// an S3-compatible server with path-style addressing (local runs); otherwise
// AWS's endpoints and the default credential chain (the instance role) apply.
func NewClient(ctx context.Context, region, endpoint string) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
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
}

// List calls fn with each page of objects under prefix, in key order.
func (b Bucket) List(ctx context.Context, prefix string, fn func([]Object) error) error {
	p := s3.NewListObjectsV2Paginator(b.Client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.Name),
		Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", b.Name, prefix, err)
		}
		objs := make([]Object, 0, len(page.Contents))
		for _, o := range page.Contents {
			if strings.HasSuffix(aws.ToString(o.Key), "/") {
				continue // folder marker
			}
			objs = append(objs, Object{
				Key:          aws.ToString(o.Key),
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

// Open starts reading one object. If etag is set, the read fails unless the
// object still has it, so what is read is what was listed. The returned
// version id is empty when the bucket is not versioned.
func (b Bucket) Open(ctx context.Context, key, etag string) (body io.ReadCloser, versionID string, err error) {
	in := &s3.GetObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key)}
	if etag != "" {
		in.IfMatch = aws.String(`"` + etag + `"`)
	}
	out, err := b.Client.GetObject(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("get s3://%s/%s: %w", b.Name, key, err)
	}
	v := aws.ToString(out.VersionId)
	if v == "null" {
		v = ""
	}
	return out.Body, v, nil
}

// Check says whether the bucket exists and is readable.
func (b Bucket) Check(ctx context.Context) error {
	_, err := b.Client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b.Name)})
	if err != nil {
		return fmt.Errorf("s3 bucket %s: %w", b.Name, err)
	}
	return nil
}
