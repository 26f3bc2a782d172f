// Package seed puts sample data into the local bucket.
package seed

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// ReadsbPrefix is where the readsb-hist samples go in the bucket.
const ReadsbPrefix = "raw/day=20231101/"

// SkipReadsb reports whether a file of the readsb-hist sample folder stays out of the bucket: bad/ holds files that are
// known to fail decoding (tests upload them on purpose when they need them), and README.md is provenance, not data.
func SkipReadsb(rel string) bool {
	rel = filepath.ToSlash(rel)
	return rel == "bad" || strings.HasPrefix(rel, "bad/") || rel == "README.md"
}

// Result counts what Upload did.
type Result struct {
	Uploaded, Unchanged int
}

// Upload copies every file under dir (except those skip rejects) to bucket under prefix, keeping relative paths. A file
// whose object already has the same size and MD5 ETag is left alone, so running it again adds no new versions.
func Upload(ctx context.Context, c *s3.Client, bucket, dir, prefix string, skip func(rel string) bool) (Result, error) {
	var res Result
	if _, err := os.Stat(dir); err != nil {
		return res, fmt.Errorf("seed: sample folder: %w", err)
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}

		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		key := prefix + path.Clean(filepath.ToSlash(rel))
		same, err := alreadyThere(ctx, c, bucket, key, body)
		if err != nil {
			return err
		}
		if same {
			res.Unchanged++
			return nil
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket),
			Key:    aws.String(key),
			Body:   bytes.NewReader(body),
		}); err != nil {
			return fmt.Errorf("seed: put s3://%s/%s: %w", bucket, key, err)
		}
		res.Uploaded++
		return nil
	})
	return res, err
}

func alreadyThere(ctx context.Context, c *s3.Client, bucket, key string, body []byte) (bool, error) {
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var api smithy.APIError
		if errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey") {
			return false, nil
		}
		return false, fmt.Errorf("seed: head s3://%s/%s: %w", bucket, key, err)
	}
	sum := md5.Sum(body)
	return aws.ToInt64(head.ContentLength) == int64(len(body)) &&
		strings.Trim(aws.ToString(head.ETag), `"`) == hex.EncodeToString(sum[:]), nil
}
