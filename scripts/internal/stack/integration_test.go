package stack_test

// These tests check that the variables devstack hands out work against the real stack. They run under `devstack exec`
// (AIRCRAFT_STACK=1) and are skipped otherwise:
//
//	cd scripts && GOWORK=off go run ./cmd/devstack exec -- go test ./internal/stack

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func needStack(t *testing.T) context.Context {
	t.Helper()
	if os.Getenv("AIRCRAFT_STACK") != "1" {
		t.Skip("needs the local stack: run under `devstack exec`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPostgres(t *testing.T) {
	ctx := needStack(t)
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var sum int
	if err := conn.QueryRow(ctx, "SELECT 40 + 2").Scan(&sum); err != nil || sum != 42 {
		t.Fatalf("SELECT 40 + 2 = %d, %v", sum, err)
	}

	// The admin URL may create and drop a throwaway database, as tests do.
	admin, err := pgx.Connect(ctx, os.Getenv("DB_ADMIN_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := "devstack_check_" + strings.ToLower(rand.Text()[:8])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE "+name); err != nil {
		t.Fatal(err)
	}
}

func TestS3Versioned(t *testing.T) {
	ctx := needStack(t)
	c := s3.New(s3.Options{
		Region:       os.Getenv("AWS_REGION"),
		BaseEndpoint: aws.String(os.Getenv("S3_ENDPOINT")),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
	})
	bucket := aws.String(os.Getenv("S3_BUCKET"))

	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: bucket})
	if err != nil || v.Status != types.BucketVersioningStatusEnabled {
		t.Fatalf("bucket versioning = %q, %v; want Enabled", v.Status, err)
	}

	key := aws.String("devstack-check/" + rand.Text())
	var versions []string
	for _, body := range []string{"first", "second"} {
		out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: key, Body: strings.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, aws.ToString(out.VersionId))
	}
	if versions[0] == "" || versions[0] == versions[1] {
		t.Fatalf("version ids %q: want two distinct ones", versions)
	}
	for i, want := range []string{"first", "second"} {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: bucket, Key: key, VersionId: aws.String(versions[i])})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if !bytes.Equal(got, []byte(want)) {
			t.Errorf("version %d = %q, want %q", i, got, want)
		}
	}
	for _, id := range versions {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: key, VersionId: aws.String(id)}); err != nil {
			t.Error(err)
		}
	}
}

func TestMongo(t *testing.T) {
	ctx := needStack(t)
	c, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URL")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	if err := c.Ping(ctx, nil); err != nil {
		t.Fatal(err)
	}
	coll := c.Database(os.Getenv("MONGODB_DB_NAME")).Collection("devstack_check")
	defer coll.Drop(ctx)
	id := rand.Text()
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "lane_id", Value: "lane1"}}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		LaneID string `bson:"lane_id"`
	}
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil || got.LaneID != "lane1" {
		t.Fatalf("FindOne = %+v, %v", got, err)
	}
}

// TestMongoFindsByIDWithTheIndex checks the stack's FerretDB patch (scripts/internal/ferret/patch.go): a find by _id is
// answered from the _id index, not by scanning the collection. FerretDB's explain returns SQLite's EXPLAIN QUERY PLAN.
func TestMongoFindsByIDWithTheIndex(t *testing.T) {
	ctx := needStack(t)
	c, err := mongo.Connect(options.Client().ApplyURI(os.Getenv("MONGODB_URL")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	db := c.Database(os.Getenv("MONGODB_DB_NAME"))
	coll := db.Collection("devstack_check_" + strings.ToLower(rand.Text()[:8]))
	defer coll.Drop(ctx)
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "k1"}}); err != nil {
		t.Fatal(err)
	}
	for _, filter := range []bson.D{
		{{Key: "_id", Value: "k1"}},
		{{Key: "lane_id", Value: "lane1"}}, // the control: no index, a scan
	} {
		var plan bson.M
		cmd := bson.D{{Key: "explain", Value: bson.D{{Key: "find", Value: coll.Name()}, {Key: "filter", Value: filter}}}}
		if err := db.RunCommand(ctx, cmd).Decode(&plan); err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprint(plan["queryPlanner"])
		indexed := strings.Contains(text, "USING INDEX")
		if wantIndexed := filter[0].Key == "_id"; indexed != wantIndexed {
			t.Errorf("find %v: plan %s; want the _id index used: %v", filter, text, wantIndexed)
		}
	}
}
