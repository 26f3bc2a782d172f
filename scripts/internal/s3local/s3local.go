// Package s3local runs versitygw (posix backend, versioning on) as the stack's S3 and prepares its versioned bucket.
package s3local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aircraftdata/platform/scripts/internal/proc"
)

// Fixed development settings: nothing here is secret.
const (
	Addr      = "127.0.0.1:7070"
	Endpoint  = "http://" + Addr
	AccessKey = "devstack"
	SecretKey = "devstack-secret"
	Region    = "us-east-1"
	Bucket    = "aircraft-data"
)

// Client returns an S3 client for the local gateway (path-style addressing).
func Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		// Plain payload checksums are enough locally and work with every gateway version.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Reachable reports whether an S3 server with our credentials answers on Addr.
func Reachable(ctx context.Context, c *s3.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	return err
}

// Start runs the versitygw binary with its objects under dataDir, object versions under versionsDir, and waits until it
// answers.
func Start(ctx context.Context, bin, dataDir, versionsDir, logPath string) (*proc.Process, error) {
	if err := proc.CheckPortFree(Addr); err != nil {
		return nil, fmt.Errorf("s3: %w, and it does not answer as our S3 (access key %s); stop whatever holds it", err, AccessKey)
	}
	for _, d := range []string{dataDir, versionsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	p, err := proc.Start("versitygw", []string{
		bin,
		"--access", AccessKey, "--secret", SecretKey, "--region", Region,
		"--port", Addr, "--quiet",
		// Connections are kept open between requests, as S3 does; versitygw closes each one after its response unless
		// told otherwise, which charged every GET of the lane downloads (ours and s5cmd's) a new TCP connection that
		// production does not pay.
		"--keep-alive",
		"posix", "--versioning-dir", versionsDir, dataDir,
	}, proc.Options{
		LogPath: logPath,
		// versitygw also reads settings from ROOT_*/VGW_* variables: run it without them.
		Env: cleanEnv(),
	})
	if err != nil {
		return nil, err
	}
	c := Client()
	if err := p.WaitReady(ctx, 30*time.Second, func(ctx context.Context) error { return Reachable(ctx, c) }); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, fmt.Errorf("s3: %w", err)
	}
	return p, nil
}

// EnsureVersionedBucket creates bucket if missing, enables versioning on it and checks that the gateway reports it
// enabled.
func EnsureVersionedBucket(ctx context.Context, c *s3.Client, bucket string) error {
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("s3: create bucket %s: %w", bucket, err)
	}
	_, err = c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	if err != nil {
		return fmt.Errorf("s3: enable versioning on %s: %w", bucket, err)
	}
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil {
		return fmt.Errorf("s3: get versioning of %s: %w", bucket, err)
	}
	if v.Status != types.BucketVersioningStatusEnabled {
		return fmt.Errorf("s3: versioning of %s is %q after enabling it; is versitygw running with --versioning-dir?", bucket, v.Status)
	}
	return nil
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ROOT_ACCESS_KEY") || strings.HasPrefix(kv, "ROOT_SECRET") || strings.HasPrefix(kv, "VGW_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Dirs returns where objects (one directory per bucket) and their older versions live under the state folder. The
// versions must stay outside the gateway's root, or they would show up as a bucket.
func Dirs(devDir string) (data, versions string) {
	return filepath.Join(devDir, "s3"), filepath.Join(devDir, "s3-versions")
}
