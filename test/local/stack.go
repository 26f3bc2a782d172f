package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// Stack is the part of the local stack one e2e run owns, as a deployed stack owns its RDS database, DocumentDB and
// bucket: a fresh Postgres database, a fresh versioned bucket and a fresh Mongo database, all removed at the end.
type Stack struct {
	Name        string // e2e_<hex>: the database names; the bucket is the same with '-'
	DatabaseURL string
	Bucket      string
	S3          *s3.Client
	S3Endpoint  string
	MongoURL    string
	MongoDB     string
}

// NewStack creates the run's databases and bucket on the local stack and removes them when the test ends.
func NewStack(t *testing.T) *Stack {
	t.Helper()
	ctx := t.Context()
	var b [5]byte
	_, _ = rand.Read(b[:])
	s := &Stack{
		Name:       "e2e_" + hex.EncodeToString(b[:]),
		S3Endpoint: StackEnv(t, "S3_ENDPOINT"),
		MongoURL:   StackEnv(t, "MONGODB_URL"),
	}
	s.Bucket = strings.ReplaceAll(s.Name, "_", "-")
	s.MongoDB = s.Name
	admin := StackEnv(t, "DB_ADMIN_URL")
	StackEnv(t, "AWS_ACCESS_KEY_ID")

	// Postgres: CREATE DATABASE with the stack's admin role; DROP … WITH (FORCE) at the end.
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("postgres (DB_ADMIN_URL): %v", err)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+s.Name)
	_ = conn.Close(ctx)
	if err != nil {
		t.Fatalf("create database %s: %v", s.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: %v", s.Name, err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+s.Name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", s.Name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + s.Name
	s.DatabaseURL = u.String()

	// S3: a versioned bucket, as the stack's.
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	s.S3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(s.S3Endpoint)
		o.UsePathStyle = true
	})
	if _, err := s.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", s.Bucket, err)
	}
	t.Cleanup(func() { removeBucket(t, s.S3, s.Bucket) })
	if _, err := s.S3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(s.Bucket),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
	}); err != nil {
		t.Fatalf("enable versioning on %s: %v", s.Bucket, err)
	}

	// Mongo: the service creates its database and collection; drop them at the end.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client, err := mongo.Connect(options.Client().ApplyURI(s.MongoURL))
		if err != nil {
			t.Errorf("drop mongo database %s: %v", s.MongoDB, err)
			return
		}
		defer func() { _ = client.Disconnect(ctx) }()
		if err := client.Database(s.MongoDB).Drop(ctx); err != nil {
			t.Errorf("drop mongo database %s: %v", s.MongoDB, err)
		}
	})
	return s
}

// removeBucket deletes every version and delete marker, then the bucket.
func removeBucket(t *testing.T, c *s3.Client, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Errorf("empty bucket %s: %v", bucket, err)
			return
		}
		for _, v := range page.Versions {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: m.Key, VersionId: m.VersionId})
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Errorf("delete bucket %s: %v", bucket, err)
	}
}

// ServiceEnv is the service's environment for this stack: the instance's (infra's serviceenv.Environment), with
// local values where the instance names a secret, uses its role or a path of its own.
//
//	instance                                    here
//	DB_SECRET_ARN (fills DB_HOST … DB_PASSWORD)  DB_HOST DB_PORT DB_USER DB_PASSWORD DB_NAME (+ DB_SSLMODE) of the URL
//	DB_SSLMODE=verify-full, DB_SSLROOTCERT      the URL's sslmode (the local cluster has no TLS)
//	MONGODB_URL_SECRET_ARN                      MONGODB_URL, MONGODB_DB_NAME of this run
//	API_TOKEN_SECRET_ARN                        API_TOKEN
//	the instance role                           AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_ENDPOINT
//	HTTP_ADDR=:443 (REDIRECT_ADDR=:80 if ACME)  HTTP_ADDR=addr, no redirect listener
//	TLS_CERT_FILE, TLS_KEY_FILE, DOWNLOAD_PATH  cert, key, downloads
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
		"TLS_CERT_FILE":         cert,
		"TLS_KEY_FILE":          key,
		"API_TOKEN":             token,
		"AWS_ACCESS_KEY_ID":     os.Getenv("AWS_ACCESS_KEY_ID"),
		"AWS_SECRET_ACCESS_KEY": os.Getenv("AWS_SECRET_ACCESS_KEY"),
		"S3_ENDPOINT":           s.S3Endpoint,
		"MONGODB_URL":           s.MongoURL,
		"MONGODB_DB_NAME":       s.MongoDB,
		"DOWNLOAD_PATH":         downloads,
	} {
		if v == "" {
			return nil, fmt.Errorf("service environment: %s is empty", k)
		}
		env[k] = v
	}
	return env, nil
}
