package fetch

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aircraftdata/platform/app/internal/download/fetch/disk"
	"github.com/aircraftdata/platform/app/internal/lanes"
)

// permanent marks an error that retrying cannot fix.
type permanent struct{ error }

func (e permanent) Unwrap() error { return e.error }

// transient reports whether err may go away on a retry: network errors, throttling and server errors, a checksum
// mismatch (bytes damaged on the way). Client errors (missing or changed object, access denied) and local file errors
// do not.
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
	exp           disk.Expected
}

// metaOf reads the headers common to HeadObjectOutput and GetObjectOutput.
func metaOf(etag, version *string, size *int64, ct s3types.ChecksumType, sse s3types.ServerSideEncryption, ssec *string,
	crc32c, crc32, crc64, sha256, sha1 *string) objectMeta {
	m := objectMeta{etag: strings.Trim(aws.ToString(etag), `"`), version: aws.ToString(version), size: aws.ToInt64(size)}
	if m.version == "null" {
		m.version = ""
	}
	m.exp = disk.Expected{Algorithm: disk.SizeOnly}
	if ct != s3types.ChecksumTypeComposite {
		for _, c := range []struct {
			a disk.Algorithm
			v *string
		}{{disk.CRC32C, crc32c}, {disk.CRC32, crc32}, {disk.CRC64NVME, crc64}, {disk.SHA256, sha256}, {disk.SHA1, sha1}} {
			v := aws.ToString(c.v)
			if v == "" || strings.Contains(v, "-") {
				continue // absent, or a checksum of part checksums
			}
			if sum, err := base64.StdEncoding.DecodeString(v); err == nil {
				m.exp = disk.Expected{Algorithm: c.a, Sum: sum}
				return m
			}
		}
	}
	// A single-part upload's ETag is its MD5, unless KMS or SSE-C encrypted.
	kms := sse == s3types.ServerSideEncryptionAwsKms || sse == s3types.ServerSideEncryptionAwsKmsDsse || ssec != nil
	if sum, err := hex.DecodeString(m.etag); err == nil && len(sum) == 16 && !kms {
		m.exp = disk.Expected{Algorithm: disk.MD5ETag, Sum: sum}
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

// withChecksums asks for the object's checksums (x-amz-checksum-mode) without the SDK validating them on the fly: the
// verifier checks the file itself, once.
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

// describeS3 turns an S3 error into a reason a client can act on: what happened to which object, with S3's error code
// at most. The SDK's own words (request ids, hosts, the operation) stay in the error's cause, for the log
// (lanes.FileError).
func describeS3(err error, bucket, key string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	object := "s3://" + bucket + "/" + key
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) {
		return &lanes.FileError{Reason: "S3 unreachable while reading " + object, Err: err}
	}
	code := "HTTP " + strconv.Itoa(re.HTTPStatusCode())
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() != "" {
		code = api.ErrorCode()
	}
	switch status := re.HTTPStatusCode(); {
	case status == http.StatusNotFound:
		return permanent{&lanes.FileError{Reason: object + " not found: deleted since it was registered?", Err: err}}
	case status == http.StatusPreconditionFailed:
		return permanent{&lanes.FileError{Reason: object + " changed since it was registered: index it again", Err: err}}
	case transient(err):
		return &lanes.FileError{Reason: "S3 unavailable for " + object + ": " + code, Err: err}
	}
	return permanent{&lanes.FileError{Reason: "S3 refused " + object + ": " + code, Err: err}}
}

// onDisk is a local file error (err) told without its paths (DOWNLOAD_PATH is the operator's, not the client's): what
// failed, and the system's word for why ("no space left on device"); the paths stay in the cause, for the log. An error
// that is already told (lanes.FileError) or has no system error in it (ours) is returned as it is.
func onDisk(what string, err error) error {
	if err == nil || errors.As(err, new(*lanes.FileError)) {
		return err
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		if what == "" {
			return err
		}
		return &lanes.FileError{Reason: what + ": " + lanes.Reason(err), Err: err}
	}
	if what == "" {
		what = "writing the file to local disk"
	}
	return &lanes.FileError{Reason: what + ": " + errno.Error(), Err: err}
}

// withLargeReads makes the bodies of the transfer manager's ranged GETs write themselves to the file in large reads.
// The transfer manager copies a range with io.Copy, which reads 32 KiB at a time unless the body is an io.WriterTo: a
// read system call, a checksum update and a WriteAt per 32 KiB.
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

// largeReads is a response body that writes itself in reads of up to 256 KiB.
type largeReads struct{ io.ReadCloser }

func (b largeReads) WriteTo(w io.Writer) (int64, error) {
	return disk.Copy(w, b.ReadCloser)
}
