// Package stacktest gives integration tests their own piece of the real local stack (scripts/cmd/devstack): a fresh
// PostgreSQL database and a fresh S3 bucket per test, removed when the test ends.
//
// Tests that use it skip when the stack's variables are missing, unless AIRCRAFT_STACK=1 (set by `devstack exec`, so by
// `make test`), in which case they fail: under make test a missing stack is an error, never a pass.
package stacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/config"
	"github.com/aircraftdata/platform/app/internal/postgres"
)

// Env returns the value of a stack variable, skipping or failing the test when it is missing.
func Env(t testing.TB, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		if os.Getenv("AIRCRAFT_STACK") == "1" {
			t.Fatalf("%s is not set although AIRCRAFT_STACK=1", key)
		}
		t.Skipf("%s not set: run under the local stack (make test, or scripts' devstack exec -- go test ...)", key)
	}
	return v
}

// Name returns a short unique lower-case name with prefix.
func Name(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// DropRoleAtEnd drops role (roles are the cluster's) when the test ends, once the test's database, which holds its
// privileges, is gone: call it before Postgres or DB, whose cleanup then runs first.
func DropRoleAtEnd(t testing.TB, role string) {
	t.Helper()
	admin := Env(t, "DB_ADMIN_URL")
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop role %s: %v", role, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP ROLE "+pgx.Identifier{role}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
}

// Postgres creates an empty database for the test and returns its URL.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := Env(t, "DB_ADMIN_URL")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("postgres admin connection: %v", err)
	}
	name := Name("test_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		t.Fatalf("create database: %v", err)
	}
	conn.Close(ctx)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		// FORCE ends the database's connections, but a pool that reconnects at that moment makes the drop fail ("being
		// accessed by other users"): try again, and say so if it never goes (DropRoleAtEnd needs it gone).
		for try := 0; ; try++ {
			_, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			if err == nil {
				return
			}
			if try == 4 {
				t.Errorf("drop database %s: %v", name, err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// DB opens the service's store on a database of the test's own (see Postgres), migrated and closed when the test ends,
// and returns it with the database's URL.
func DB(t testing.TB) (*postgres.DB, string) {
	t.Helper()
	dbURL := Postgres(t)
	db, err := OpenDB(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db, dbURL
}

// OpenDB opens the service's store on url with the default read pool, for tests that open more than one store on a
// database (several workers).
func OpenDB(ctx context.Context, url string) (*postgres.DB, error) {
	d := config.Defaults()
	return postgres.Open(ctx, url, postgres.ReadPool{MaxConns: d.DBReadMaxConns, Timeout: d.ReadTimeout})
}

// S3 returns a client for the local S3 server.
func S3(t testing.TB) *s3.Client {
	t.Helper()
	endpoint := Env(t, "S3_ENDPOINT")
	Env(t, "AWS_ACCESS_KEY_ID")
	c, err := bucket.NewClient(context.Background(), "us-east-1", endpoint)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Bucket creates a versioned bucket for the test, emptied and removed at the end.
func Bucket(t testing.TB) bucket.Bucket {
	t.Helper()
	c := S3(t)
	ctx := context.Background()
	name := Name("test-")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(name),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
	}); err != nil {
		t.Fatalf("enable versioning: %v", err)
	}
	t.Cleanup(func() { RemoveBucket(c, name) })
	return bucket.Bucket{Client: c, Name: name}
}

// RemoveBucket deletes every version and delete marker of a bucket, then the bucket; errors are ignored (it cleans up
// after tests and benchmarks).
func RemoveBucket(c *s3.Client, name string) {
	ctx := context.Background()
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			break
		}
		for _, v := range page.Versions {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: m.Key, VersionId: m.VersionId})
		}
	}
	_, _ = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
}

// Put uploads body under key.
func Put(t testing.TB, b bucket.Bucket, key string, body []byte) {
	t.Helper()
	_, err := b.Client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(b.Name), Key: aws.String(key), Body: strings.NewReader(string(body)),
	})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// SamplesDir is the folder of real readsb-hist samples: shared/ beside the repository, whose root is the nearest folder
// above the test's that holds go.work (make builds with -trimpath, so the source file's path is no guide).
func SamplesDir(t testing.TB) string {
	t.Helper()
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatal("no go.work in any parent folder of the working directory: run from inside the repository")
		}
		root = parent
	}
	dir := filepath.Join(root, "..", "shared", "data", "readsb-hist")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("sample data not found at %s: %v", dir, err)
	}
	return dir
}

// Sample reads one sample file (path relative to SamplesDir).
func Sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(SamplesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
