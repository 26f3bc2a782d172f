// Package s3standin is an S3 stand-in for tests: a reverse proxy in front of the local S3 server that, for chosen keys,
// answers an S3 error or stalls, and can answer listings as AWS does for keys that XML cannot carry. Everything else is
// passed through.
package s3standin

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// Fault is what the stand-in does to a read of one object.
type Fault struct {
	status        int // an S3 error answer: status, code, message
	code, message string
	hang          bool          // answer nothing, not even headers
	stallAfter    int           // stall after this many bytes of the body (-1: never)
	trickle       time.Duration // send the body a small chunk at a time, this far apart
}

// Refuse answers an S3 error, e.g. Refuse(403, "AccessDenied", "Access Denied").
func Refuse(status int, code, message string) Fault {
	return Fault{status: status, code: code, message: message, stallAfter: -1}
}

// Hang answers nothing at all.
func Hang() Fault { return Fault{hang: true, stallAfter: -1} }

// Stall sends the answer's headers and n bytes of the body, then nothing.
func Stall(n int) Fault { return Fault{stallAfter: n} }

// Trickle sends the body 16 bytes at a time, every apart.
func Trickle(every time.Duration) Fault { return Fault{trickle: every, stallAfter: -1} }

// StandIn is a running stand-in.
type StandIn struct {
	upstream bucket.Bucket
	proxy    *httputil.ReverseProxy
	closed   chan struct{}

	mu      sync.Mutex
	faults  map[string]Fault
	listing []string // nil: listings pass through
}

// New starts a stand-in in front of b's server for the test and returns it with b as seen through it.
func New(t testing.TB, b bucket.Bucket) (*StandIn, bucket.Bucket) {
	t.Helper()
	target, err := url.Parse(stacktest.Env(t, "S3_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	s := &StandIn{upstream: b, closed: make(chan struct{}), faults: map[string]Fault{}}
	s.proxy = httputil.NewSingleHostReverseProxy(target) // keeps the Host header the request was signed with
	s.proxy.FlushInterval = -1
	s.proxy.ErrorLog = log.New(io.Discard, "", 0) // a stall it was told to make is no news
	s.proxy.ModifyResponse = s.modify
	srv := httptest.NewServer(s)
	t.Cleanup(func() { close(s.closed); srv.Close() })
	c, err := bucket.NewClient(context.Background(), "us-east-1", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s, bucket.Bucket{Client: c, Name: b.Name}
}

// Set makes reads of key meet f.
func (s *StandIn) Set(key string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[key] = f
}

// Clear removes every fault.
func (s *StandIn) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// ServeListing answers listings with these keys (objects of the bucket, one page) as AWS does: URL-encoded when the
// request asks for it, else as they are, whatever characters they hold.
func (s *StandIn) ServeListing(keys ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listing = keys
}

// key returns the object key of a path-style request, if it names one.
func (s *StandIn) key(r *http.Request) (string, bool) {
	key, ok := strings.CutPrefix(r.URL.Path, "/"+s.upstream.Name+"/")
	return key, ok && key != ""
}

func (s *StandIn) fault(r *http.Request) (Fault, bool) {
	key, ok := s.key(r)
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return Fault{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.faults[key]
	return f, ok
}

func (s *StandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	listing := s.listing
	s.mu.Unlock()
	if _, object := s.key(r); !object && r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2" && listing != nil {
		s.list(w, r, listing)
		return
	}
	f, faulty := s.fault(r)
	if faulty && f.hang {
		select { // until the client gives up or the test ends
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	}
	if faulty && f.status != 0 {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(f.status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<Error><Code>%s</Code><Message>%s</Message><RequestId>standin</RequestId></Error>`, f.code, f.message)
		}
		return
	}
	if faulty && f.stallAfter >= 0 {
		w = flushingWriter{w} // the headers go out before the stall
	}
	s.proxy.ServeHTTP(w, r)
}

// flushingWriter sends the headers as soon as they are written.
type flushingWriter struct{ http.ResponseWriter }

func (f flushingWriter) WriteHeader(code int) {
	f.ResponseWriter.WriteHeader(code)
	_ = http.NewResponseController(f.ResponseWriter).Flush()
}

func (f flushingWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

func (s *StandIn) modify(resp *http.Response) error {
	f, ok := s.fault(resp.Request)
	if !ok || resp.StatusCode/100 != 2 {
		return nil
	}
	resp.Body = &faultyBody{ReadCloser: resp.Body, f: f, done: resp.Request.Context().Done(), closed: s.closed}
	return nil
}

// faultyBody stalls or trickles a body.
type faultyBody struct {
	io.ReadCloser
	f            Fault
	sent         int
	done, closed <-chan struct{}
}

func (b *faultyBody) Read(p []byte) (int, error) {
	if b.f.stallAfter >= 0 && b.sent >= b.f.stallAfter {
		select { // until the client gives up or the test ends
		case <-b.done:
		case <-b.closed:
		}
		return 0, io.ErrUnexpectedEOF
	}
	if b.f.stallAfter >= 0 && len(p) > b.f.stallAfter-b.sent {
		p = p[:b.f.stallAfter-b.sent]
	}
	if b.f.trickle > 0 {
		time.Sleep(b.f.trickle)
		p = p[:min(len(p), 16)]
	}
	n, err := b.ReadCloser.Read(p)
	b.sent += n
	return n, err
}

// list answers a ListObjectsV2 request with keys, their metadata from the server.
func (s *StandIn) list(w http.ResponseWriter, r *http.Request, keys []string) {
	encode := r.URL.Query().Get("encoding-type") == "url"
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
	fmt.Fprintf(&b, "<Name>%s</Name><Prefix></Prefix><KeyCount>%d</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>",
		s.upstream.Name, len(keys))
	if encode {
		b.WriteString("<EncodingType>url</EncodingType>")
	}
	// As AWS: only markup is escaped; a control character goes as it is.
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	for _, k := range keys {
		head, err := s.upstream.Client.HeadObject(r.Context(), &s3.HeadObjectInput{Bucket: aws.String(s.upstream.Name), Key: aws.String(k)})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if encode {
			k = url.QueryEscape(k)
		}
		fmt.Fprintf(&b, "<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>%s</ETag><Size>%d</Size><StorageClass>STANDARD</StorageClass></Contents>",
			esc.Replace(k), aws.ToTime(head.LastModified).UTC().Format("2006-01-02T15:04:05.000Z"), esc.Replace(aws.ToString(head.ETag)),
			aws.ToInt64(head.ContentLength))
	}
	b.WriteString("</ListBucketResult>")
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, b.String())
}
