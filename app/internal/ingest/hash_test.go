package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Only a file without a snapshot time is known by its bytes: the ledger holds the SHA-256 of a list file's bytes
// (computed here from what was uploaded), and none for a snapshot, known by its time, whose bytes are not hashed.
func TestOnlyFilesWithoutASnapshotTimeAreHashed(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, dbURL := stacktest.DB(t)
	list := []byte(`[{"icao": "a00001", "altitude": 1000, "speed": 100}]`)
	stacktest.Put(t, b, "list.json", list)
	stacktest.Put(t, b, "snapshot.json", stacktest.Sample(t, "20231101-000030Z.json"))
	s := &Service{DB: db, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: 2, Limits: defaultLimits()}
	if res, err := run(t, s, Request{}); err != nil || res.FilesIngested != 2 {
		t.Fatalf("%+v, %v; want both files ingested", res, err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	hashOf := func(key string) []byte {
		t.Helper()
		var h []byte
		if err := conn.QueryRow(ctx, `SELECT content_sha256 FROM ingested_objects WHERE key = $1`, key).Scan(&h); err != nil {
			t.Fatalf("ledger row of %s: %v", key, err)
		}
		return h
	}
	if want := sha256.Sum256(list); !bytes.Equal(hashOf("list.json"), want[:]) {
		t.Errorf("the list file's hash in the ledger is %x, want %x (its bytes')", hashOf("list.json"), want)
	}
	if h := hashOf("snapshot.json"); h != nil {
		t.Errorf("the snapshot's bytes were hashed (%x): its time identifies it", h)
	}
}
