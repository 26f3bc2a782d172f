package ingest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aircraftdata/platform/app/internal/flight/flighttest"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Snapshots ingested by separate runs, latest first, add up in the database to the statistics of all of them: the
// stored merge (each column's merge SQL) and the read agree with the oracle for every aircraft. Two small snapshots,
// the later first, change one aircraft's registration and type.
func TestRunsMergeInTheDatabase(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, _ := stacktest.DB(t)
	s := &Service{DB: db, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: 2, Limits: defaultLimits()}
	want := flighttest.Oracle{}
	type file struct {
		name string
		data []byte
	}
	files := []file{
		{"x/20231101-000900Z.json", []byte(`{"now": 1698797340, "aircraft": [{"hex": "fff001", "r": "N2", "t": "B738"}]}`)},
		{"x/20231101-000800Z.json", []byte(`{"now": 1698797280, "aircraft": [{"hex": "fff001", "r": "N1", "t": "A320", "gs": 5}]}`)},
	}
	for _, name := range []string{"20231101-000700Z.json.gz", "20231101-000315Z.json", "20231101-000030Z.json"} {
		files = append(files, file{name, stacktest.Sample(t, name)})
	}
	for _, f := range files {
		name, data := f.name, f.data
		want.Add(t, data)
		stacktest.Put(t, b, name, data)
		run, err := s.Begin(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := run.Ingest(ctx, Request{Prefix: name}, nil); err != nil || res.FilesIngested != 1 {
			t.Fatalf("%s: %+v, %v", name, res, err)
		}
	}
	want.Check(t, db)
}
