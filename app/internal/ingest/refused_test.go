package ingest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Two files of one snapshot time in a batch: the first is ingested, the second recorded as its duplicate. When the
// database then refuses the first on its own, the second is not recorded as a duplicate of a snapshot that was never
// committed: it is left for the next run, which ingests it. A duplicate of a committed snapshot is still recorded as
// one.
func TestDuplicateOfARefusedFileIsReadAgain(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, dbURL := stacktest.DB(t)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The database refuses one registration, as it would a value too large for its field.
	if _, err := conn.Exec(ctx, `ALTER TABLE aircraft_stats ADD CONSTRAINT refused CHECK (registration IS DISTINCT FROM 'REFUSED')`); err != nil {
		t.Fatal(err)
	}
	// Listed, and with one worker read, in key order.
	files := map[string]string{
		"a/20231101-000500Z.json": `{"now": 1698790000, "aircraft": [{"hex": "a00001", "r": "REFUSED", "alt_baro": 1000}]}`,
		"b/20231101-000500Z.json": `{"now": 1698790000, "aircraft": [{"hex": "b00001", "alt_baro": 2000}]}`,
		"c/20231101-000600Z.json": `{"now": 1698790060, "aircraft": [{"hex": "c00001", "alt_baro": 3000}]}`,
		"d/20231101-000600Z.json": `{"now": 1698790060, "aircraft": [{"hex": "d00001", "alt_baro": 4000}]}`,
	}
	var allBytes int64
	for k, body := range files {
		stacktest.Put(t, b, k, []byte(body))
		allBytes += int64(len(body))
	}
	m := new(recordingMetrics)
	s := &Service{DB: db, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: 1, Limits: defaultLimits(), Metrics: m}
	ingest := func() Result {
		t.Helper()
		run, err := s.Begin(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		res, err := run.Ingest(ctx, Request{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return *res
	}

	res := ingest()
	if res.FilesIngested != 1 || res.FilesFailed != 1 || res.Failed[0].Key != "a/20231101-000500Z.json" ||
		res.SkippedByReason[reasonDuplicateSnapshot] != 1 || res.SkippedByReason[reasonDuplicateRefused] != 1 {
		t.Fatalf("first run: %+v", res)
	}
	for _, n := range res.Skipped {
		if n.Key == "b/20231101-000500Z.json" && !strings.Contains(n.Reason, "a/20231101-000500Z.json") {
			t.Errorf("b's note %q does not name the refused file", n.Reason)
		}
	}
	// Told once committed: c ingested (one observation), a quarantined for the database's refusal (one bisection), d a
	// duplicate, b left for the next run; every file decoded counts its bytes.
	want := toldCounts{files: map[string]int{"ingested": 1, "quarantined": 1, "skipped_duplicate_snapshot": 1,
		"skipped_duplicate_of_a_refused_file": 1}, quarantined: map[string]int{"database_refused": 1},
		bytes: allBytes, observations: 1, bisections: 1}
	if got, commits := m.take(); !got.equal(want) || commits < 2 {
		t.Errorf("first run told %+v and %d commits, want %+v and at least the refused commit and one after", got, commits, want)
	}
	res = ingest()
	if res.FilesIngested != 1 || res.SkippedByReason[reasonAlreadyIngested] != 2 || res.SkippedByReason[reasonQuarantined] != 1 ||
		len(res.SkippedByReason) != 2 {
		t.Fatalf("second run: %+v, want b ingested, a quarantined, c and d (its duplicate) in the ledger", res)
	}
	want = toldCounts{files: map[string]int{"ingested": 1, "skipped_already_ingested": 2, "skipped_quarantined": 1},
		quarantined: map[string]int{}, bytes: int64(len(files["b/20231101-000500Z.json"])), observations: 1}
	if got, _ := m.take(); !got.equal(want) {
		t.Errorf("second run told %+v, want %+v", got, want)
	}
	for icao, alt := range map[string]float64{"b00001": 2000, "c00001": 3000} {
		st, err := db.Stats(ctx, icao)
		if err != nil || st.Observations != 1 || st.MaxAltitudeBaro == nil || *st.MaxAltitudeBaro != alt {
			t.Errorf("%s: %+v, %v; want one observation at %v ft", icao, st, err, alt)
		}
	}
	for _, icao := range []string{"a00001", "d00001"} {
		if _, err := db.Stats(ctx, icao); !errors.Is(err, flight.ErrNotFound) {
			t.Errorf("%s: %v, want no statistics", icao, err)
		}
	}
}
