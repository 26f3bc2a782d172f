package backfillstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/backfill"
	"github.com/aircraftdata/platform/app/internal/postgres/backfillstore"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// BACKFILL_MAX_RUNNING counts the running backfills of every instance; one whose instance stopped renewing it reads as
// failed "instance lost", no longer counts, and its real end, saved later, is the truth.
func TestBackfillsRunningAndLost(t *testing.T) {
	ctx := context.Background()
	db, _ := stacktest.DB(t)
	store := backfillstore.New(db)
	b := backfill.Backfill{ID: "0123456789abcdef01234567", Bucket: "b", Request: backfill.Request{Prefix: "p/"},
		Runner: "local", BatchSize: 10, Concurrency: 2}
	if err := store.CreateBackfill(ctx, b, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	other := b
	other.ID = "76543210fedcba9876543210"
	if err := store.CreateBackfill(ctx, other, 1, time.Minute); !errors.Is(err, backfill.ErrFull) {
		t.Fatalf("a second backfill with one allowed: %v, want ErrFull", err)
	}
	// The first one's lease runs out (renewed for no time at all).
	if _, err := store.AddProgress(ctx, b.ID, backfill.Delta{Progress: backfill.Progress{BatchesDone: 1, Files: 10}}, -time.Second); err != nil {
		t.Fatal(err)
	}
	got, ok, err := store.LoadBackfill(ctx, b.ID)
	if err != nil || !ok || got.State != backfill.Failed || got.Error != backfill.InstanceLost || got.Files != 10 || got.Finished == nil {
		t.Fatalf("lost backfill: %+v %v %v", got, ok, err)
	}
	if err := store.CreateBackfill(ctx, other, 1, time.Minute); err != nil {
		t.Fatalf("a backfill once the other is lost: %v", err)
	}
	if err := store.EndBackfill(ctx, b.ID, backfill.Stopped, ""); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := store.LoadBackfill(ctx, b.ID); got.State != backfill.Stopped || got.Error != "" {
		t.Errorf("the real end after lost: %s %q, want stopped", got.State, got.Error)
	}
	if ok, err := store.RequestStop(ctx, "000000000000000000000000"); ok || err != nil {
		t.Errorf("stopping an unknown backfill: %v %v", ok, err)
	}
}
