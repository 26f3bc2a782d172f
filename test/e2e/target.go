package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	http_helper "github.com/gruntwork-io/terratest/modules/http-helper"
	"github.com/gruntwork-io/terratest/modules/retry"

	"github.com/aircraftdata/platform/test/testkit"
)

// Target is a running service under test.
type Target struct {
	Name    string         // "local" or "aws": for messages
	BaseURL string         // https://host[:port], without a trailing slash
	RootCAs *x509.CertPool // what the certificate must chain to: the pinned self-signed one; nil = system roots (ACME)
	Token   string         // the API token (Authorization: Bearer) of every POST
	Store   ObjectStore    // the service's bucket, written with the test runner's credentials
	// ReadDownload returns a file below the service's DOWNLOAD_PATH (rel is relative to it) when the test can see the
	// service's disk (the local target): the lane check then compares bytes. Nil on AWS, where the disk is on the
	// instance: the check compares the sizes and checksums the API reports with those of the uploaded bytes.
	ReadDownload func(rel string) ([]byte, error)
}

// ObjectStore writes objects into the bucket the service reads.
type ObjectStore interface {
	Put(ctx context.Context, key string, body []byte) error
}

// TLSConfig trusts only RootCAs (or the system roots when nil): testkit.TLSConfig.
func (tg Target) TLSConfig() *tls.Config { return testkit.TLSConfig(tg.RootCAs) }

// RequestTimeout bounds every API call (an ingestion runs in the background: no call waits for it).
const RequestTimeout = 60 // seconds, as http-helper takes it

// Response is one API answer. http-helper gives the status and the body (trimmed).
type Response struct {
	Status int
	Body   string
}

// JSON decodes the body into v.
func (r Response) JSON(v any) error {
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		return fmt.Errorf("decode %.300s: %w", r.Body, err)
	}
	return nil
}

func (r Response) String() string { return fmt.Sprintf("%d %.500s", r.Status, r.Body) }

// Auth says which Authorization header a request carries.
type Auth int

const (
	NoAuth    Auth = iota // no header
	WithToken             // Bearer <token>
	BadToken              // Bearer <something else>
)

// Call makes one request through http-helper: a JSON body when body is not nil. It returns an error only when no answer
// came (connection, TLS, timeout). Like any polite client it waits and asks again when the service's rate limit answers
// 429 (its Retry-After is 1 s at the rates it allows), up to maxRetries429 times.
func (tg Target) Call(t testing.TB, method, path string, body any, auth Auth) (Response, error) {
	t.Helper()
	headers := map[string]string{"Accept": "application/json"}
	var payload []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Response{}, err
		}
		payload = b
		headers["Content-Type"] = "application/json"
	}
	switch auth {
	case WithToken:
		headers["Authorization"] = "Bearer " + tg.Token
	case BadToken:
		headers["Authorization"] = "Bearer not-" + tg.Token
	}
	for try := 0; ; try++ {
		var reader io.Reader
		if payload != nil {
			reader = bytes.NewReader(payload)
		}
		status, respBody, err := http_helper.HTTPDoWithOptionsE(t, http_helper.HttpDoOptions{
			Method: method, Url: tg.BaseURL + path, Body: reader, Headers: headers,
			TlsConfig: tg.TLSConfig(), Timeout: RequestTimeout,
		})
		if err != nil {
			return Response{}, fmt.Errorf("%s %s: %w", method, path, err)
		}
		if status != http.StatusTooManyRequests || try == maxRetries429 {
			return Response{Status: status, Body: respBody}, nil
		}
		time.Sleep(time.Second)
	}
}

// maxRetries429 bounds Call's waits on the rate limit.
const maxRetries429 = 60

// MustCall is Call that fails the test when no answer came.
func (tg Target) MustCall(t testing.TB, method, path string, body any, auth Auth) Response {
	t.Helper()
	r, err := tg.Call(t, method, path, body, auth)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// WaitHealthy polls GET /api/v1/health until it answers 200 with status ok, through the pinned TLS configuration, for
// at most timeout or until ctx ends.
func (tg Target) WaitHealthy(ctx context.Context, t testing.TB, timeout time.Duration) error {
	t.Helper()
	var last string
	interval := max(time.Second, timeout/120) // a minute: every second; ten minutes: every five
	err := poll(ctx, t, "GET "+tg.BaseURL+"/api/v1/health", timeout, interval, func() (bool, error) {
		status, body, err := http_helper.HTTPGetContextE(t, ctx, tg.BaseURL+"/api/v1/health", tg.TLSConfig())
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%d %.200s", status, body)
		return status == http.StatusOK && strings.Contains(body, `"status":"ok"`), nil
	})
	if err != nil {
		return fmt.Errorf("%s not healthy: %w (last answer: %s)", tg.BaseURL, err, last)
	}
	return nil
}

// poll calls fn every interval until it returns done, or an error (which ends the wait), for at most timeout or until
// ctx ends. It is terratest's retry loop: each attempt is logged.
func poll(ctx context.Context, t testing.TB, what string, timeout, interval time.Duration, fn func() (done bool, err error)) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := retry.DoWithRetryContextE(t, ctx, what, int(timeout/interval)+1, interval, func() (string, error) {
		done, err := fn()
		if err != nil {
			return "", retry.FatalError{Underlying: err}
		}
		if !done {
			return "", errors.New("not yet")
		}
		return "", nil
	})
	var fatal retry.FatalError
	if errors.As(err, &fatal) {
		return fatal.Underlying
	}
	return err
}

// Run is one run of the checks: every object it uploads is under its own prefix, and it has its own lane, so that runs
// never see each other's files.
type Run struct {
	ID string // 20261124t080412-3f9a1c: UTC time and randomness, lower case
}

// NewRun returns a run named after now.
func NewRun(now time.Time) Run {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return Run{ID: strings.ToLower(now.UTC().Format("20060102t150405")) + "-" + hex.EncodeToString(b[:])}
}

// Prefix is the key prefix of everything the run uploads.
func (r Run) Prefix() string { return "e2e/" + r.ID + "/" }

// FlightPrefix is where the flight data samples go (the prefix given to POST /process-s3-data).
func (r Run) FlightPrefix() string { return r.Prefix() + "raw/day=20231101/" }

// LanePrefix is where the lane files go: {LanePrefix}{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file}.
func (r Run) LanePrefix() string { return r.Prefix() + "lanes/" }

// Lane is the run's lane id (letters, digits, - and _; at most 64).
func (r Run) Lane() string { return "e2e-" + r.ID }
