package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/flight"
	"github.com/aircraftdata/platform/app/internal/ingest"
	"github.com/aircraftdata/platform/app/internal/ledger"
	"github.com/aircraftdata/platform/app/internal/progress"
)

type ingestInput struct {
	Prefix      string `query:"prefix" doc:"only objects whose key starts with this prefix" example:"raw/day=20231101/"`
	RetryFailed bool   `query:"retry_failed" doc:"read quarantined files again even if their ETag is unchanged"`
	AsyncInput
}

// ingest runs one ingestion, or answers 409 while another of the same prefix runs anywhere.
func (h *handlers) ingest(ctx context.Context, in *ingestInput) (*maybeAsync, error) {
	run, err := h.Ingest.Begin(ctx, in.Prefix)
	if errors.Is(err, ingest.ErrBusy) {
		return nil, huma.Error409Conflict("an ingestion of this prefix is already running; try again when it has finished")
	}
	if err != nil {
		return nil, h.ingestFailed(ctx, err)
	}
	req := ingest.Request{Prefix: in.Prefix, RetryFailed: in.RetryFailed}
	if in.async() {
		out, err := h.startJob(ctx, "ingest", func(ctx context.Context, p *progress.Counter) (any, error) {
			res, err := run.Ingest(ctx, req, p)
			if res == nil {
				return nil, err
			}
			return boundIngest(res), err
		})
		if err != nil {
			run.Release()
		}
		return out, err
	}
	res, err := run.Ingest(ctx, req, nil)
	if err != nil {
		return nil, h.ingestFailed(ctx, err)
	}
	return &maybeAsync{Status: http.StatusOK, Body: res}, nil
}

type statsInput struct {
	ICAO string `path:"icao" pattern:"^~?[0-9A-Fa-f]{6}$" doc:"ICAO 24-bit address: 6 hex digits, any case; ~ marks a non-ICAO address" example:"a65800"`
}

type statsOutput struct{ Body *flight.Stats }

// aircraftStats answers one aircraft's statistics, 404 when it has none.
func (h *handlers) aircraftStats(ctx context.Context, in *statsInput) (*statsOutput, error) {
	icao, err := flight.NormalizeICAO(in.ICAO)
	if err != nil {
		return nil, huma.Error422UnprocessableEntity(err.Error())
	}
	s, err := h.Stats.Stats(ctx, icao)
	if errors.Is(err, flight.ErrNotFound) {
		return nil, huma.Error404NotFound("no statistics for aircraft " + icao)
	}
	if err != nil {
		return nil, h.unavailable(ctx, "postgres", err)
	}
	return &statsOutput{Body: s}, nil
}

type listInput struct {
	After string `query:"after" pattern:"^(~?[0-9A-Fa-f]{6})?$" doc:"return aircraft after this address (the previous page's next)"`
	Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

type aircraftPage page[flight.Aircraft]

// listAircraft answers a page of the aircraft with statistics, by address.
func (h *handlers) listAircraft(ctx context.Context, in *listInput) (*struct{ Body aircraftPage }, error) {
	after := strings.ToLower(in.After)
	p, err := paginate(h.Limits.page(in.Limit),
		func(n int) ([]flight.Aircraft, error) { return h.Stats.Aircraft(ctx, after, n) },
		func(a flight.Aircraft) string { return a.ICAO })
	if err != nil {
		return nil, h.unavailable(ctx, "postgres", err)
	}
	return &struct{ Body aircraftPage }{aircraftPage(p)}, nil
}

type failedInput struct {
	After string `query:"after" doc:"return files after this key (the previous page's next)"`
	Limit int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
}

type failedPage page[ledger.FailedFile]

// listFailed answers a page of the quarantined files, by key.
func (h *handlers) listFailed(ctx context.Context, in *failedInput) (*struct{ Body failedPage }, error) {
	p, err := paginate(h.Limits.page(in.Limit),
		func(n int) ([]ledger.FailedFile, error) { return h.Ingest.FailedFiles(ctx, in.After, n) },
		func(f ledger.FailedFile) string { return f.Key })
	if err != nil {
		return nil, h.ingestFailed(ctx, err)
	}
	return &struct{ Body failedPage }{failedPage(p)}, nil
}

// ingestFailed answers a run that could not go on: 503 naming the dependency that failed (ingest.UnavailableError),
// else as failure does.
func (h *handlers) ingestFailed(ctx context.Context, err error) error {
	var u *ingest.UnavailableError
	if errors.As(err, &u) && ctx.Err() == nil {
		return h.unavailable(ctx, u.Dependency, err)
	}
	return h.failure(ctx, "ingestion", err)
}
