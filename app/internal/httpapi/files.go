package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/aircraftdata/platform/app/internal/download"
	"github.com/aircraftdata/platform/app/internal/jobs"
	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/progress"
)

// retryBusyAfter is the Retry-After of a 409 for an hour that another download holds.
const retryBusyAfter = 10

type downloadRequest struct {
	LaneID string `json:"lane_id" pattern:"^[A-Za-z0-9_-]{1,64}$" example:"lane1" doc:"1 to 64 letters, digits, _ or -"`
	Hour   int    `json:"hour" minimum:"0" maximum:"23" example:"14" doc:"UTC hour of the day"`
	Date   string `json:"date" example:"2024-02-14T00:00:00Z" doc:"the day: RFC 3339 (its calendar date counts) or YYYY-MM-DD"`
}

type downloadInput struct {
	Body downloadRequest
	AsyncInput
	hour lanes.Hour
}

// Resolve validates the fields huma's schema cannot (the date) and keeps the selected hour.
func (in *downloadInput) Resolve(huma.Context) []error {
	h, err := lanes.NewHour(in.Body.LaneID, in.Body.Date, in.Body.Hour)
	if err == nil {
		in.hour = h
		return nil
	}
	var errs []error
	for _, e := range unwrapAll(err) {
		var fe *lanes.FieldError
		if errors.As(e, &fe) && fe.Field == "date" { // lane_id and hour: the schema already said so
			errs = append(errs, &huma.ErrorDetail{Location: "body.date", Message: fe.Msg, Value: fe.Value})
		}
	}
	return errs
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// download downloads one lane's hour: the hour is claimed first, outside any job slot, so that a request for an hour
// another download holds waits (synchronous) or answers 409 (async), and never holds a slot while it waits.
func (h *handlers) download(ctx context.Context, in *downloadInput) (*maybeAsync, error) {
	c, err := h.Lanes.Downloader.Claim(ctx, in.hour, !in.async())
	if errors.Is(err, download.ErrBusy) {
		return nil, huma.ErrorWithHeaders(huma.Error409Conflict(err.Error()+": retry later"),
			http.Header{"Retry-After": {strconv.Itoa(retryBusyAfter)}})
	}
	if err != nil {
		return nil, h.failure(ctx, "mongodb", err)
	}
	if in.async() {
		out, err := h.startJob(ctx, "download", func(ctx context.Context, p *progress.Counter) (any, error) {
			res, err := c.Download(ctx, p)
			if res == nil {
				return nil, err
			}
			return boundHour(res), err
		})
		if err != nil {
			c.Release()
		}
		return out, err
	}
	defer c.Release() // when Run refused it
	var res *download.HourResult
	err = h.Jobs.Run(ctx, func(ctx context.Context) (err error) {
		res, err = c.Download(ctx, nil)
		return err
	})
	if errors.Is(err, jobs.ErrFull) { // counted with the jobs: as a job refused
		return nil, huma.ErrorWithHeaders(huma.Error429TooManyRequests("too many downloads and background jobs are running; retry later"),
			http.Header{"Retry-After": {strconv.Itoa(retryJobsAfter)}})
	}
	if errors.Is(err, jobs.ErrStopped) {
		return nil, huma.Error503ServiceUnavailable("not starting downloads: the service is shutting down")
	}
	if err != nil {
		return nil, h.failure(ctx, "mongodb", err)
	}
	return &maybeAsync{Status: http.StatusOK, Body: res}, nil
}

type registerRecord struct {
	Key       string    `json:"s3_key" minLength:"1" maxLength:"1024" doc:"object key in SOURCE_BUCKET"`
	LaneID    string    `json:"lane_id" pattern:"^[A-Za-z0-9_-]{1,64}$"`
	Timestamp time.Time `json:"timestamp" doc:"when the file's data was recorded; selects its hour (UTC)"`
	Size      *int64    `json:"size,omitempty" minimum:"0" doc:"bytes, when known: a download fails if the object has another size"`
	ETag      string    `json:"etag,omitempty" maxLength:"200" doc:"S3 ETag, when known: a download fails if the object no longer has it"`
	VersionID string    `json:"version_id,omitempty" maxLength:"1024"`
}

// registerMaxBody bounds a registration's body (huma's default is 1 MiB, too little for the 10,000 records it accepts).
const registerMaxBody = 16 << 20

type registerInput struct {
	Body struct {
		Records []registerRecord `json:"records" minItems:"1" maxItems:"10000"`
	}
}

// registerFiles adds or updates file records; a size left out is unknown.
func (h *handlers) registerFiles(ctx context.Context, in *registerInput) (*struct{ Body lanes.RegisterResult }, error) {
	rs := make([]lanes.Record, len(in.Body.Records))
	for i, r := range in.Body.Records {
		size := int64(-1)
		if r.Size != nil {
			size = *r.Size
		}
		rs[i] = lanes.Record{Key: r.Key, LaneID: r.LaneID, Timestamp: r.Timestamp.UTC(), Size: size, ETag: r.ETag, VersionID: r.VersionID}
	}
	res, err := h.Lanes.Store.Register(ctx, rs, time.Now().UTC())
	if err != nil {
		return nil, h.unavailable(ctx, "mongodb", err)
	}
	return &struct{ Body lanes.RegisterResult }{res}, nil
}

type indexInput struct {
	Body *struct {
		Prefix string `json:"prefix,omitempty" maxLength:"1024" example:"lanes/" doc:"only objects whose key starts with this prefix"`
	} `required:"false"`
	AsyncInput
}

// indexFiles registers the lane files found in the bucket under a prefix.
func (h *handlers) indexFiles(ctx context.Context, in *indexInput) (*maybeAsync, error) {
	prefix := ""
	if in.Body != nil {
		prefix = in.Body.Prefix
	}
	if in.async() {
		return h.startJob(ctx, "index", func(ctx context.Context, p *progress.Counter) (any, error) {
			return h.Lanes.Indexer.Index(ctx, prefix, p)
		})
	}
	res, err := h.Lanes.Indexer.Index(ctx, prefix, nil)
	if err != nil {
		return nil, h.failure(ctx, "index", err)
	}
	return &maybeAsync{Status: http.StatusOK, Body: res}, nil
}

type listFilesInput struct {
	LaneID string `query:"lane_id" pattern:"^([A-Za-z0-9_-]{1,64})?$" doc:"only this lane"`
	Date   string `query:"date" doc:"only this day (YYYY-MM-DD or RFC 3339)" example:"2024-02-14"`
	Hour   string `query:"hour" pattern:"^(|[0-9]|[01][0-9]|2[0-3])$" doc:"only this UTC hour of date (0-23)"`
	Status string `query:"status" enum:"pending,downloading,downloaded,failed," doc:"only files with this status"`
	After  string `query:"after" maxLength:"1024" doc:"files after this key (the previous page's next)"`
	Limit  int    `query:"limit" minimum:"1" maximum:"10000" default:"1000"`

	from, to time.Time
}

func (in *listFilesInput) Resolve(huma.Context) []error {
	switch {
	case in.Date == "" && in.Hour != "":
		return []error{&huma.ErrorDetail{Location: "query.hour", Message: "hour needs a date", Value: in.Hour}}
	case in.Date == "":
		return nil
	}
	day, err := lanes.ParseDate(in.Date)
	if err != nil {
		return []error{&huma.ErrorDetail{Location: "query.date", Message: err.Error(), Value: in.Date}}
	}
	in.from, in.to = day, day.Add(24*time.Hour)
	if in.Hour != "" {
		h, _ := strconv.Atoi(in.Hour) // the pattern made sure
		in.from = day.Add(time.Duration(h) * time.Hour)
		in.to = in.from.Add(time.Hour)
	}
	return nil
}

type filesPage page[lanes.Record]

// listFiles answers a page of the file records that match, by key.
func (h *handlers) listFiles(ctx context.Context, in *listFilesInput) (*struct{ Body filesPage }, error) {
	p, err := paginate(h.Limits.page(in.Limit),
		func(n int) ([]lanes.Record, error) {
			return h.Lanes.Store.List(ctx, lanes.Query{
				LaneID: in.LaneID, From: in.from, To: in.to, Status: lanes.Status(in.Status), After: in.After, Limit: n,
			})
		},
		func(r lanes.Record) string { return r.Key })
	if err != nil {
		return nil, h.unavailable(ctx, "mongodb", err)
	}
	return &struct{ Body filesPage }{filesPage(p)}, nil
}
