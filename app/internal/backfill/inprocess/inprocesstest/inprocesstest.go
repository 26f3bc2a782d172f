// Package inprocesstest holds what the tests of in-process backfills share.
package inprocesstest

import (
	"context"

	"github.com/aircraftdata/platform/app/internal/backfill/inprocess"
	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// HoldSecond is a Processor that counts its batches in Calls and holds the second until Released is closed, closing
// Second when it arrives: a test can act while a batch is under way.
type HoldSecond struct {
	inprocess.Processor
	Calls            chan struct{}
	Second, Released chan struct{}
}

// NewHoldSecond returns a HoldSecond over p with room for batches batches (p may be set later, before the first).
func NewHoldSecond(p inprocess.Processor, batches int) *HoldSecond {
	return &HoldSecond{Processor: p, Calls: make(chan struct{}, batches), Second: make(chan struct{}),
		Released: make(chan struct{})}
}

func (h *HoldSecond) Process(ctx context.Context, objs []bucket.Object, req ingest.Request, p *progress.Counter) (*ingest.Result, error) {
	h.Calls <- struct{}{}
	if len(h.Calls) == 2 {
		close(h.Second)
		<-h.Released
	}
	return h.Processor.Process(ctx, objs, req, p)
}
