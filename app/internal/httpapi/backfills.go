package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/backfill"
)

const tagBackfills = "backfills"

// retryBackfillAfter is the Retry-After of a 429 when BACKFILL_MAX_RUNNING backfills run.
const retryBackfillAfter = 60

// startBackfillOp declares POST /api/v1/backfills.
func startBackfillOp() huma.Operation {
	op := post("start-backfill", "/api/v1/backfills", "Start a backfill: ingest the history under a prefix or a date range", tagBackfills)
	op.Description = "Ingests every object under prefix, or under the day folders prefix+YYYY/MM/DD/ from `from` to `to`, " +
		"in batches of BACKFILL_BATCH_SIZE keys, BACKFILL_CONCURRENCY batches at once, each batch committed whole or not " +
		"at all and retried BACKFILL_RETRIES times when S3 or PostgreSQL fails. Runs on the Step Functions state machine " +
		"BACKFILL_STATE_MACHINE_ARN when set, else in the service. Files already ingested (by anyone) count once. " +
		"Answers 201 with the backfill to poll at Location; 429 when BACKFILL_MAX_RUNNING backfills run."
	op.DefaultStatus = http.StatusCreated
	op.Errors = []int{http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable}
	return op
}

// backfillOp declares GET and DELETE /api/v1/backfills/{id}: they need the bearer token as the POST does (a backfill
// names keys and costs money).
func backfillOp(method, id, summary string) huma.Operation {
	op := post(id, "/api/v1/backfills/{id}", summary, tagBackfills)
	op.Method = method
	op.Errors = []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusServiceUnavailable}
	return op
}

func getBackfillOp() huma.Operation {
	op := backfillOp(http.MethodGet, "get-backfill", "A backfill and its progress: batches, files, bytes, observations, estimated cost")
	op.Description = "Any instance answers. failed_batches lists the first 1000 batches that failed after their retries " +
		"(first and last key); a new backfill over the same keys ingests what is missing and skips the rest."
	return op
}

func stopBackfillOp() huma.Operation {
	op := backfillOp(http.MethodDelete, "stop-backfill", "Stop a backfill")
	op.Description = "No batch starts any more; the batches under way end, each committed whole or not at all. " +
		"Answers the backfill (state running until they have ended, then stopped)."
	return op
}

type startBackfillInput struct {
	Body backfill.Request
}

type backfillOutput struct {
	Location string `header:"Location"`
	Body     backfill.Backfill
}

type backfillInput struct {
	ID string `path:"id" pattern:"^[0-9a-f]{24}$"`
}

func (h *handlers) startBackfill(ctx context.Context, in *startBackfillInput) (*backfillOutput, error) {
	b, err := h.Backfills.Start(ctx, in.Body)
	var bad *backfill.RequestError
	switch {
	case errors.As(err, &bad):
		return nil, huma.Error422UnprocessableEntity(bad.Reason)
	case errors.Is(err, backfill.ErrFull):
		return nil, huma.ErrorWithHeaders(
			huma.Error429TooManyRequests("too many backfills are running (BACKFILL_MAX_RUNNING); retry later"),
			http.Header{"Retry-After": {strconv.Itoa(retryBackfillAfter)}})
	case err != nil:
		return nil, h.failure(ctx, "backfill", err)
	}
	return &backfillOutput{Location: "/api/v1/backfills/" + b.ID, Body: b}, nil
}

func (h *handlers) getBackfill(ctx context.Context, in *backfillInput) (*backfillOutput, error) {
	return h.answerBackfill(ctx, h.Backfills.Get, in.ID)
}

func (h *handlers) stopBackfill(ctx context.Context, in *backfillInput) (*backfillOutput, error) {
	return h.answerBackfill(ctx, h.Backfills.Stop, in.ID)
}

func (h *handlers) answerBackfill(ctx context.Context, fn func(context.Context, string) (backfill.Backfill, bool, error), id string) (*backfillOutput, error) {
	b, ok, err := fn(ctx, id)
	if err != nil {
		return nil, h.failure(ctx, "backfill", err)
	}
	if !ok {
		return nil, huma.Error404NotFound("no such backfill")
	}
	return &backfillOutput{Location: "/api/v1/backfills/" + b.ID, Body: b}, nil
}
