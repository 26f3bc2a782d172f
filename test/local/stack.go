package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aircraftdata/platform/infra/serviceenv"
)

// StackEnv returns a variable that `devstack exec` provides (docs/CONTRACT.md, .dev/env). Without it the test is
// skipped, unless AIRCRAFT_STACK=1 says that it runs under the local stack: then a missing variable is a failure.
func StackEnv(t testing.TB, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		if os.Getenv("AIRCRAFT_STACK") == "1" {
			t.Fatalf("%s is not set although AIRCRAFT_STACK=1", key)
		}
		t.Skipf("%s not set: run under the local stack (make e2e, or .dev/bin/devstack exec -- go test ./test/local/)", key)
	}
	return v
}

// Stack is the part of the local stack one e2e run (or one benchmark) owns, as a deployed stack owns its RDS database,
// DocumentDB and bucket: a fresh Postgres database, a fresh versioned bucket and a fresh Mongo database, all removed at
// the end.
type Stack struct {
	Name        string // e2e_<hex>: the database names; the bucket is the same with '-'
	DatabaseURL string
	Bucket      string
	S3          *s3.Client
	S3Endpoint  string
	MongoURL    string
	MongoDB     string

	admin string // DB_ADMIN_URL
	made  struct{ db, bucket bool }
}

// NewStack creates the run's databases and bucket on the local stack (OpenStack) and removes them when the test ends.
// Without the stack's variables the test is skipped (StackEnv).
func NewStack(t *testing.T) *Stack {
	t.Helper()
	for _, k := range []string{"DB_ADMIN_URL", "S3_ENDPOINT", "MONGODB_URL", "AWS_ACCESS_KEY_ID"} {
		StackEnv(t, k)
	}
	s, err := OpenStack(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// OpenStack creates a fresh Postgres database, a fresh versioned bucket and names a fresh Mongo database (the service
// creates it) on the local stack whose variables `devstack exec` exports. Close removes them.
func OpenStack(ctx context.Context) (*Stack, error) {
	var b [5]byte
	_, _ = rand.Read(b[:])
	s := &Stack{
		Name:       "e2e_" + hex.EncodeToString(b[:]),
		S3Endpoint: os.Getenv("S3_ENDPOINT"),
		MongoURL:   os.Getenv("MONGODB_URL"),
		admin:      os.Getenv("DB_ADMIN_URL"),
	}
	for k, v := range map[string]string{"DB_ADMIN_URL": s.admin, "S3_ENDPOINT": s.S3Endpoint, "MONGODB_URL": s.MongoURL,
		"AWS_ACCESS_KEY_ID": os.Getenv("AWS_ACCESS_KEY_ID")} {
		if v == "" {
			return nil, fmt.Errorf("%s not set: run under the local stack (.dev/bin/devstack exec -- …)", k)
		}
	}
	s.Bucket = strings.ReplaceAll(s.Name, "_", "-")
	s.MongoDB = s.Name
	u, err := url.Parse(s.admin)
	if err != nil {
		return nil, fmt.Errorf("DB_ADMIN_URL: %w", err)
	}
	u.Path = "/" + s.Name
	s.DatabaseURL = u.String()

	// Postgres: CREATE DATABASE with the stack's admin role; DROP … WITH (FORCE) in Close.
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return nil, fmt.Errorf("postgres (DB_ADMIN_URL): %w", err)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+s.Name)
	_ = conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("create database %s: %w", s.Name, err)
	}
	s.made.db = true

	// S3: a versioned bucket, as the stack's.
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"))
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	s.S3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(s.S3Endpoint)
		o.UsePathStyle = true
	})
	if _, err := s.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		return nil, errors.Join(fmt.Errorf("create bucket %s: %w", s.Bucket, err), s.Close())
	}
	s.made.bucket = true
	if _, err := s.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(s.Bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("enable versioning on %s: %w", s.Bucket, err), s.Close())
	}
	return s, nil
}

// Close removes what OpenStack made: the Postgres database (WITH (FORCE)), every version in the bucket and the bucket,
// and the Mongo database the service made.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if s.made.db {
		conn, err := pgx.Connect(ctx, s.admin)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.Name+" WITH (FORCE)")
			_ = conn.Close(ctx)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", s.Name, err))
		}
	}
	if s.made.bucket {
		if err := removeBucket(ctx, s.S3, s.Bucket); err != nil {
			errs = append(errs, err)
		}
	}
	if s.made.db { // the service may have made the Mongo database once the stack existed
		client, err := mongo.Connect(options.Client().ApplyURI(s.MongoURL))
		if err == nil {
			err = client.Database(s.MongoDB).Drop(ctx)
			_ = client.Disconnect(ctx)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("drop mongo database %s: %w", s.MongoDB, err))
		}
	}
	s.made.db, s.made.bucket = false, false
	return errors.Join(errs...)
}

// removeBucket deletes every version and delete marker, then the bucket.
func removeBucket(ctx context.Context, c *s3.Client, bucket string) error {
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("empty bucket %s: %w", bucket, err)
		}
		for _, v := range page.Versions {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: m.Key, VersionId: m.VersionId})
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return fmt.Errorf("delete bucket %s: %w", bucket, err)
	}
	return nil
}

// ServiceEnv is the service's environment for this stack: the instance's (infra's serviceenv.Environment), with local
// values where the instance names a secret, uses its role or a path of its own.
//
//	instance                                    here
//	DB_SECRET_ARN (fills DB_HOST … DB_PASSWORD)  DB_HOST DB_PORT DB_USER DB_PASSWORD DB_NAME (+ DB_SSLMODE) of the URL
//	DB_SSLMODE=verify-full, DB_SSLROOTCERT      the URL's sslmode (the local cluster has no TLS)
//	MONGODB_URL_SECRET_ARN                      MONGODB_URL, MONGODB_DB_NAME of this run
//	API_TOKEN_SECRET_ARN                        API_TOKEN
//	the instance role                           AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_ENDPOINT
//	HTTP_ADDR=:443 (REDIRECT_ADDR=:80 if ACME)  HTTP_ADDR=addr, no redirect listener
//	METRICS_ADDR (default 127.0.0.1:9464)       127.0.0.1:0: runs of the suite (and make dev) never collide
//	TLS_CERT_FILE, TLS_KEY_FILE, DOWNLOAD_PATH  cert, key, downloads
//	RATE_LIMIT_PER_SECOND, RATE_LIMIT_BURST      lifted: the suite, the only client, reads hundreds of aircraft four
//	                                            times, which at 20 a second was most of its time (the limit itself is
//	                                            app/cmd/aircraftd's TestReadFloodDoesNotHurtTheWork, on the binary)
//
// Every other variable the instance gets, this run gets as it is.
func (s *Stack) ServiceEnv(addr, token, downloads, cert, key string) (map[string]string, error) {
	env := serviceenv.Environment(serviceenv.Settings{Region: "us-east-1", Bucket: s.Bucket, TLSMode: "selfsigned"})
	for _, k := range []string{"DB_SECRET_ARN", "DB_SSLMODE", "DB_SSLROOTCERT", "MONGODB_URL_SECRET_ARN", "API_TOKEN_SECRET_ARN", "REDIRECT_ADDR"} {
		delete(env, k)
	}
	db, err := DBSettings(s.DatabaseURL)
	if err != nil {
		return nil, err
	}
	maps.Copy(env, db)
	for k, v := range map[string]string{
		"HTTP_ADDR":             addr,
		"METRICS_ADDR":          "127.0.0.1:0",
		"TLS_CERT_FILE":         cert,
		"TLS_KEY_FILE":          key,
		"API_TOKEN":             token,
		"AWS_ACCESS_KEY_ID":     os.Getenv("AWS_ACCESS_KEY_ID"),
		"AWS_SECRET_ACCESS_KEY": os.Getenv("AWS_SECRET_ACCESS_KEY"),
		"S3_ENDPOINT":           s.S3Endpoint,
		"MONGODB_URL":           s.MongoURL,
		"MONGODB_DB_NAME":       s.MongoDB,
		"DOWNLOAD_PATH":         downloads,
		"RATE_LIMIT_PER_SECOND": "100000",
		"RATE_LIMIT_BURST":      "100000",
	} {
		if v == "" {
			return nil, fmt.Errorf("service environment: %s is empty", k)
		}
		env[k] = v
	}
	return env, nil
}
