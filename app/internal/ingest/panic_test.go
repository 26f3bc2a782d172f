package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/aircraftdata/platform/app/internal/panics"
	"github.com/aircraftdata/platform/app/internal/readsb"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// A panic in an ingest worker fails the run with the panic (the handler answers "internal error" with the request id),
// commits nothing of the file that met it, gives the lock back, and the next run is whole.
func TestPanicInAWorkerFailsTheRun(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, _ := stacktest.DB(t)
	for _, n := range []string{"20231101-000030Z.json", "20231101-000700Z.json.gz"} {
		stacktest.Put(t, b, n, stacktest.Sample(t, n))
	}
	s := &Service{DB: db, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: 2, Limits: defaultLimits()}

	decode = func(io.Reader, readsb.Limits) (*readsb.File, error) { panic("injected: a bug in the decoder") }
	t.Cleanup(func() { decode = readsb.Decode })
	run, err := s.Begin(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = run.Ingest(ctx, Request{}, nil)
	var p *panics.Error
	if !errors.As(err, &p) || p.Value != "injected: a bug in the decoder" {
		t.Fatalf("run: %v, want the panic", err)
	}

	decode = readsb.Decode
	run, err = s.Begin(ctx, "") // the lock was given back
	if err != nil {
		t.Fatal(err)
	}
	res, err := run.Ingest(ctx, Request{}, nil)
	if err != nil || res.FilesIngested != 2 || res.FilesFailed != 0 {
		t.Fatalf("after the panic: %+v, %v; want both files ingested", res, err)
	}
}
