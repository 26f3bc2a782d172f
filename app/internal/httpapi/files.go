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

const tagLanes = "lane files"

// retryBusyAfter is the Retry-After of a 409 for an hour that another
// download holds.
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

// Resolve validates the fields huma's schema cannot (the date) and keeps the
// selected hour.
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

type registerRecord struct {
	Key       string    `json:"s3_key" minLength:"1" maxLength:"1024" doc:"object key in SOURCE_BUCKET"`
	LaneID    string    `json:"lane_id" pattern:"^[A-Za-z0-9_-]{1,64}$"`
	Timestamp time.Time `json:"timestamp" doc:"when the file's data was recorded; selects its hour (UTC)"`
	Size      *int64    `json:"size,omitempty" minimum:"0" doc:"bytes, when known: a download fails if the object has another size"`
	ETag      string    `json:"etag,omitempty" maxLength:"200" doc:"S3 ETag, when known: a download fails if the object no longer has it"`
	VersionID string    `json:"version_id,omitempty" maxLength:"1024"`
}

// registerMaxBody bounds a registration's body (huma's default is 1 MiB,
// too little for the 10,000 records it accepts).
const registerMaxBody = 16 << 20

type registerInput struct {
	Body struct {
		Records []registerRecord `json:"records" minItems:"1" maxItems:"10000"`
	}
}

type indexInput struct {
	Body *struct {
		Prefix string `json:"prefix,omitempty" maxLength:"1024" example:"lanes/" doc:"only objects whose key starts with this prefix"`
	} `required:"false"`
	AsyncInput
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

type filesPage struct {
	Items []lanes.Record `json:"items"`
	// Next is the value of after for the next page; null on the last page.
	Next *string `json:"next"`
}

func registerFiles(api huma.API, d Deps) {
	notConfigured := func() error {
		return huma.Error503ServiceUnavailable("lane file downloads are not configured: set MONGODB_URL")
	}

	op := post("download", "/api/v1/download", "Download the files of one lane and hour", tagLanes)
	op.Description = "Downloads every registered file of lane_id whose timestamp falls in the UTC hour `hour` of `date` " +
		"to DOWNLOAD_PATH/{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file}. Files appear whole and verified (size and checksum) or not at all; " +
		"files already there, whole, are not fetched again; an hour being downloaded by another request is waited for. " +
		"Each file's status is kept in MongoDB. A file that cannot be downloaded is listed in failed, with its reason in failures. " +
		"A synchronous download counts against JOBS_MAX_RUNNING like a job (429 when full); an hour that another download holds " +
		"is waited for up to DOWNLOAD_WAIT_SECONDS (at once with async=true), then answers 409 with Retry-After."
	op.Responses = asyncResponses(api, download.HourResult{})
	op.Errors = []int{http.StatusUnauthorized, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusTooManyRequests, http.StatusServiceUnavailable}
	huma.Register(api, op, func(ctx context.Context, in *downloadInput) (*maybeAsync, error) {
		if d.Lanes == nil {
			return nil, notConfigured()
		}
		// The hour is claimed first, outside any job slot: a request for an
		// hour another download holds waits (synchronous) or answers 409
		// (async), and never holds a slot while it waits.
		c, err := d.Lanes.Downloader.Claim(ctx, in.hour, !in.async())
		if errors.Is(err, download.ErrBusy) {
			return nil, huma.ErrorWithHeaders(huma.Error409Conflict(err.Error()+": retry later"),
				http.Header{"Retry-After": {strconv.Itoa(retryBusyAfter)}})
		}
		if err != nil {
			return nil, failure(ctx, d, "mongodb", err)
		}
		if in.async() {
			out, err := startJob(ctx, d, "download", func(ctx context.Context, p *progress.Counter) (any, error) {
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
		err = d.Jobs.Run(ctx, func(ctx context.Context) (err error) {
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
			return nil, failure(ctx, d, "mongodb", err)
		}
		return &maybeAsync{Status: http.StatusOK, Body: res}, nil
	})

	op = post("register-files", "/api/v1/files", "Register file records", tagLanes)
	op.Description = "Adds records of objects in SOURCE_BUCKET, idempotently: a known key with the same lane, timestamp, size " +
		"and etag is left alone; a changed one is updated and goes back to pending. Up to 10,000 records and 16 MiB per request " +
		"(10,000 records with 1,024-byte keys fit)."
	op.MaxBodyBytes = registerMaxBody
	op.Errors = []int{http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable}
	huma.Register(api, op, func(ctx context.Context, in *registerInput) (*struct{ Body lanes.RegisterResult }, error) {
		if d.Lanes == nil {
			return nil, notConfigured()
		}
		rs := make([]lanes.Record, len(in.Body.Records))
		for i, r := range in.Body.Records {
			size := int64(-1)
			if r.Size != nil {
				size = *r.Size
			}
			rs[i] = lanes.Record{Key: r.Key, LaneID: r.LaneID, Timestamp: r.Timestamp.UTC(), Size: size, ETag: r.ETag, VersionID: r.VersionID}
		}
		res, err := d.Lanes.Store.Register(ctx, rs, time.Now().UTC())
		if err != nil {
			return nil, unavailable(ctx, d, "mongodb", err)
		}
		return &struct{ Body lanes.RegisterResult }{res}, nil
	})

	op = post("index-files", "/api/v1/files/index", "Register every lane file of the bucket", tagLanes)
	op.Description = "Lists SOURCE_BUCKET under prefix and registers each object laid out as …/{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file}; " +
		"other objects are reported as skipped. A rerun adds nothing; an object whose size or etag changed updates its record."
	op.Responses = asyncResponses(api, download.IndexResult{})
	op.Errors = []int{http.StatusUnauthorized, http.StatusUnprocessableEntity, http.StatusServiceUnavailable}
	huma.Register(api, op, func(ctx context.Context, in *indexInput) (*maybeAsync, error) {
		if d.Lanes == nil {
			return nil, notConfigured()
		}
		prefix := ""
		if in.Body != nil {
			prefix = in.Body.Prefix
		}
		if in.async() {
			return startJob(ctx, d, "index", func(ctx context.Context, p *progress.Counter) (any, error) {
				return d.Lanes.Indexer.Index(ctx, prefix, p)
			})
		}
		res, err := d.Lanes.Indexer.Index(ctx, prefix, nil)
		if err != nil {
			return nil, failure(ctx, d, "index", err)
		}
		return &maybeAsync{Status: http.StatusOK, Body: res}, nil
	})

	op = listing("list-files", "/api/v1/files", "File records, by key, a page at a time", tagLanes)
	op.Description = "Needs a token of READ_TOKEN or API_TOKEN (records name S3 keys and local paths). " +
		"A page holds at most READ_PAGE_MAX records, whatever limit asks."
	huma.Register(api, op,
		func(ctx context.Context, in *listFilesInput) (*struct{ Body filesPage }, error) {
			if d.Lanes == nil {
				return nil, notConfigured()
			}
			limit := pageLimit(d, in.Limit)
			items, err := d.Lanes.Store.List(ctx, lanes.Query{
				LaneID: in.LaneID, From: in.from, To: in.to, Status: lanes.Status(in.Status), After: in.After, Limit: limit + 1,
			})
			if err != nil {
				return nil, unavailable(ctx, d, "mongodb", err)
			}
			page := filesPage{Items: items}
			if len(items) > limit {
				page.Items = items[:limit]
				next := page.Items[limit-1].Key
				page.Next = &next
			}
			return &struct{ Body filesPage }{page}, nil
		})
}
