package local

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/test/e2e"
	"github.com/aircraftdata/platform/test/testkit"
)

// TestHostileFilesQuarantinedWithinMemory runs aircraftd as built for the instance, with its default caps, over a
// bucket that holds, beside real snapshots, one full-size file of every hostile class of issue 13 (a gzip expanding to
// 2 GiB, 1 GiB values kept and ignored, 10M empty records, 1M addresses, 200k-deep nesting, a document that never ends,
// a gzip member followed by garbage). The run answers 200, each hostile file is quarantined with a reason naming its
// cap (docs/ingestion.md), the real snapshots are committed exactly, a rerun skips the quarantined files without
// fetching them, and the service's peak RSS (VmHWM) stays within 150 MiB.
func TestHostileFilesQuarantinedWithinMemory(t *testing.T) {
	StackEnv(t, "DB_ADMIN_URL")
	stack, svc, tg := newService(t, nil)

	samples, err := e2e.LoadSamples(testkit.SamplesDir())
	if err != nil {
		t.Fatal(err)
	}
	var good []e2e.Sample
	for _, s := range samples.Good {
		if slices.Contains([]string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000700Z.json.gz"}, s.Name) {
			good = append(good, s)
		}
	}
	if len(good) != 3 {
		t.Fatalf("found %d of the 3 samples", len(good))
	}
	oracle, err := e2e.NewOracle(good)
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, body []byte) {
		if _, err := stack.S3.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(stack.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range good {
		put("good/"+s.Name, s.Body)
	}
	hostile := hostileFiles()
	capOf := map[string]string{}
	for _, h := range hostile {
		put("hostile/"+h.name, h.body)
		capOf["hostile/"+h.name] = h.cap
	}

	startService(t, svc)
	client := &http.Client{Transport: testkit.PinnedTransport(svc.Pinned), Timeout: 10 * time.Minute}
	call := func(method, path string, v any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, tg.BaseURL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tg.Token)
		resp, err := client.Do(req)
		for try := 0; err == nil && resp.StatusCode == http.StatusTooManyRequests && try < 60; try++ {
			resp.Body.Close() // the rate limit: wait as told and ask again
			time.Sleep(time.Second)
			resp, err = client.Do(req)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s\n%s", method, path, resp.StatusCode, body, svc.Tail(20))
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}

	type note struct{ Key, Reason string }
	var res struct {
		FilesIngested   int            `json:"files_ingested"`
		FilesFailed     int            `json:"files_failed"`
		Failed          []note         `json:"failed"`
		SkippedByReason map[string]int `json:"skipped_by_reason"`
		Observations    int            `json:"observations"`
		AircraftUpdated int            `json:"aircraft_updated"`
		Bytes           int64          `json:"bytes"`
	}
	call(http.MethodPost, "/process-s3-data", &res)
	peak, err := svc.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak RSS of aircraftd over the run: %.1f MiB", float64(peak)/(1<<20))
	if peak <= 0 || peak > 150<<20 {
		t.Errorf("peak RSS %d MiB, want <= 150 MiB", peak>>20)
	}

	// The real snapshots: committed exactly (the oracle reads them with encoding/json).
	if res.FilesIngested != len(good) || res.Observations != oracle.TotalObservations() || res.AircraftUpdated != len(oracle.Aircraft) {
		t.Errorf("ingested %d files, %d observations, %d aircraft; want %d, %d, %d", res.FilesIngested, res.Observations,
			res.AircraftUpdated, len(good), oracle.TotalObservations(), len(oracle.Aircraft))
	}
	for _, icao := range oracle.Pick(97) {
		var got e2e.Stats
		call(http.MethodGet, "/aircraft-stats/"+icao, &got)
		for _, d := range oracle.Aircraft[icao].Diff(got) {
			t.Error(d)
		}
	}

	// Every hostile file is refused with its cap named, in the run's answer and in the list of failed files.
	if res.FilesFailed != len(hostile) || len(res.Failed) != len(hostile) {
		t.Errorf("%d files failed (%d listed), want %d: %+v", res.FilesFailed, len(res.Failed), len(hostile), res.Failed)
	}
	for _, f := range res.Failed {
		if c, ok := capOf[f.Key]; !ok || !strings.Contains(f.Reason, c) {
			t.Errorf("%s: reason %q, want it to name %q", f.Key, f.Reason, c)
		}
	}
	var page struct {
		Items []struct {
			Key    string `json:"key"`
			Reason string `json:"reason"`
		} `json:"items"`
	}
	call(http.MethodGet, "/api/v1/ingestion/failed?limit=1000", &page)
	var listed, want []string
	for _, it := range page.Items {
		listed = append(listed, it.Key)
		if !strings.Contains(it.Reason, capOf[it.Key]) {
			t.Errorf("listed %s: reason %q, want it to name %q", it.Key, it.Reason, capOf[it.Key])
		}
	}
	for k := range capOf {
		want = append(want, k)
	}
	slices.Sort(listed)
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Errorf("listed %v, want %v", listed, want)
	}

	// A rerun fetches nothing: every file is known to the ledger.
	res.Failed, res.SkippedByReason = nil, nil
	call(http.MethodPost, "/process-s3-data", &res)
	if res.FilesFailed != 0 || res.Bytes != 0 || res.SkippedByReason["quarantined"] != len(hostile) ||
		res.SkippedByReason["already ingested"] != len(good) {
		t.Errorf("rerun: %+v", res)
	}
	if err := svc.Stop(30 * time.Second); err != nil {
		t.Errorf("%v\n%s", err, svc.Tail(20))
	}
}

// hostileFile is a file built to exhaust memory, time or the database if anything in ingestion were bounded by its
// input, and the text its refusal must contain: the cap it hits as docs/ingestion.md names it.
type hostileFile struct {
	name string
	body []byte
	cap  string
}

// hostileFiles makes each class at full size. A gzip stream may hold many members, read as one stream: a file is its
// opening member, one member repeated, and a closing one, so that none takes more than a few MB here however much it
// expands to.
func hostileFiles() []hostileFile {
	const mib = 1 << 20
	open := func(rest string) string { return `{"now":1698796900.5,"aircraft":` + rest }
	var nest strings.Builder
	for range 1000 {
		nest.WriteByte('[')
	}
	return []hostileFile{
		{"bomb-2gib.json.gz", gzipMembers(open(`[],"padding":"`), strings.Repeat("z", mib), 2048, `"}`), "INGEST_MAX_FILE_BYTES"},
		{"registration-1gib.json.gz", gzipMembers(open(`[{"hex":"a1b2c3","r":"`), strings.Repeat("R", mib), 1024, `"}]}`), "INGEST_MAX_STRING_BYTES"},
		{"squawk-1gib.json.gz", gzipMembers(open(`[{"hex":"a1b2c3","squawk":"`), strings.Repeat("7", mib), 1024, `"}]}`), "INGEST_MAX_FILE_BYTES"},
		{"rssi-1gib.json.gz", gzipMembers(open(`[{"hex":"a1b2c3","rssi":-2`), strings.Repeat("5", mib), 1024, `}]}`), "INGEST_MAX_FILE_BYTES"},
		{"altitude-1gib.json.gz", gzipMembers(open(`[{"hex":"a1b2c3","alt_baro":3`), strings.Repeat("9", mib), 1024, `}]}`), "longer than 64 bytes"},
		{"nic-array-1gib.json.gz", gzipMembers(open(`[{"hex":"a1b2c3","nav_modes":[1`), strings.Repeat(",1", mib/2), 1024, `]}]}`), "INGEST_MAX_FILE_BYTES"},
		{"no-address-10m.json.gz", gzipMembers(open(`[{}`), strings.Repeat(",{}", mib/3), 30, `]}`), "not flight data"},
		{"addresses-1m.json.gz", distinctAddresses(1 << 20), "INGEST_MAX_AIRCRAFT_PER_FILE"},
		{"depth-200k.json.gz", gzipMembers(open(`[],"deep":`), nest.String(), 200, ""), "INGEST_MAX_DEPTH"},
		{"unterminated.json.gz", gzipMembers(open(`[{"hex":"a1b2c3"}`), strings.Repeat(`,{"hex":"a1b2c3"}`, mib/16), 512, ""), "INGEST_MAX_FILE_BYTES"},
		{"trailing-garbage.json.gz", append(gzipMembers(open(`[{"hex":"a1b2c3","alt_baro":31000}]}`), "", 0, ""), "this is not compressed"...), "gzip"},
	}
}

// gzipMembers is a gzip stream that decompresses to first, then unit n times, then last.
func gzipMembers(first, unit string, n int, last string) []byte {
	compress := func(s string) []byte {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = io.WriteString(w, s)
		_ = w.Close()
		return b.Bytes()
	}
	out := compress(first)
	if n > 0 {
		out = append(out, bytes.Repeat(compress(unit), n)...)
	}
	if last != "" {
		out = append(out, compress(last)...)
	}
	return out
}

// distinctAddresses is one snapshot of n aircraft, each with its own address, gzip-compressed.
func distinctAddresses(n int) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	_, _ = io.WriteString(w, `{"now":1698796900.5,"aircraft":[`)
	for i := range n {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(w, `%s{"hex":"%06x","gs":120.5}`, sep, 0xffffff-i)
	}
	_, _ = io.WriteString(w, "]}")
	_ = w.Close()
	return b.Bytes()
}
