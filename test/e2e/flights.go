package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ingestResult is the answer of an ingestion (the job's result).
type ingestResult struct {
	FilesSeen       int            `json:"files_seen"`
	FilesIngested   int            `json:"files_ingested"`
	FilesSkipped    int            `json:"files_skipped"`
	SkippedByReason map[string]int `json:"skipped_by_reason"`
	Skipped         []fileNote     `json:"skipped"`
	FilesFailed     int            `json:"files_failed"`
	Failed          []fileNote     `json:"failed"`
	AircraftUpdated int            `json:"aircraft_updated"`
	Observations    int            `json:"observations"`
}

type fileNote struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

// Reasons of skipped files, as the service words them.
const (
	reasonDuplicate   = "duplicate snapshot"
	reasonIngested    = "already ingested"
	reasonQuarantined = "quarantined"
)

func uploadSamples(t *testing.T, tg Target, r Run, d Data) {
	t.Helper()
	for _, s := range d.Samples.All() {
		if err := tg.Store.Put(t.Context(), r.FlightPrefix()+s.Name, s.Body); err != nil {
			t.Fatalf("upload %s: %v", s.Name, err)
		}
	}
}

func checkFlights(t *testing.T, tg Target, r Run, d Data) {
	uploadSamples(t, tg, r, d)
	picked := d.Oracle.Pick(41)

	var first ingestResult
	if !t.Run("ingest", func(t *testing.T) { first = ingest(t, tg, r.FlightPrefix()); checkFirstIngest(t, r, d, first) }) {
		return
	}
	var before map[string]string
	t.Run("statistics", func(t *testing.T) { before = checkStatistics(t, tg, d.Oracle, picked) })
	t.Run("list", func(t *testing.T) { checkList(t, tg, d.Oracle) })
	t.Run("rerun", func(t *testing.T) {
		res := ingest(t, tg, r.FlightPrefix())
		good, bad := len(d.Samples.Good), len(d.Samples.Bad)
		if res.FilesSeen != good+bad || res.FilesIngested != 0 || res.SkippedByReason[reasonIngested] != good ||
			res.SkippedByReason[reasonQuarantined] != bad || res.FilesFailed != 0 || res.Observations != 0 {
			t.Errorf("a rerun must skip the %d good files as already ingested and the %d bad ones as quarantined: %+v", good, bad, res)
		}
		if before == nil {
			t.Skip("no statistics to compare with")
		}
		after := fetchStats(t, tg, picked)
		changed := 0
		for _, h := range picked {
			if before[h] != after[h] {
				changed++
				if changed <= 5 {
					t.Errorf("%s changed on rerun:\nbefore %s\nafter  %s", h, before[h], after[h])
				}
			}
		}
		if changed > 0 {
			t.Errorf("%d of %d aircraft changed on rerun", changed, len(picked))
		}
	})
}

// ingest runs POST /process-s3-data in the background (?async=true) and polls its job to the end. A 409 (another
// ingestion is running, here or from another test run) is waited out.
func ingest(t *testing.T, tg Target, prefix string) ingestResult {
	t.Helper()
	var job struct {
		ID     string          `json:"id"`
		State  string          `json:"state"`
		Result json.RawMessage `json:"result"`
		Error  string          `json:"error"`
	}
	path := "/process-s3-data?async=true&prefix=" + url.QueryEscape(prefix)
	err := poll(t.Context(), t, "POST "+path, 10*time.Minute, 5*time.Second, func() (bool, error) {
		resp, err := tg.Call(t, http.MethodPost, path, nil, WithToken)
		switch {
		case err != nil:
			return false, nil // retried: the service may be restarting
		case resp.Status == http.StatusConflict:
			return false, nil
		case resp.Status != http.StatusAccepted:
			return false, fmt.Errorf("ingest: %s, want 202", resp)
		}
		return true, resp.JSON(&job)
	})
	if err != nil || job.ID == "" {
		t.Fatalf("ingest %s: %v (job %+v)", prefix, err, job)
	}
	err = poll(t.Context(), t, "job "+job.ID, 15*time.Minute, time.Second, func() (bool, error) {
		resp, err := tg.Call(t, http.MethodGet, "/api/v1/jobs/"+job.ID, nil, NoAuth)
		if err != nil {
			return false, nil
		}
		if resp.Status != http.StatusOK {
			return false, fmt.Errorf("job: %s", resp)
		}
		if err := resp.JSON(&job); err != nil {
			return false, err
		}
		return job.State != "running", nil
	})
	if err != nil {
		t.Fatalf("ingest %s: %v", prefix, err)
	}
	if job.State != "succeeded" {
		t.Fatalf("ingest %s: job %s %s: %s", prefix, job.ID, job.State, job.Error)
	}
	var res ingestResult
	if err := json.Unmarshal(job.Result, &res); err != nil {
		t.Fatalf("ingest result %s: %v", job.Result, err)
	}
	t.Logf("ingest %s: seen %d, ingested %d, skipped %v, failed %d, observations %d", prefix,
		res.FilesSeen, res.FilesIngested, res.SkippedByReason, res.FilesFailed, res.Observations)
	return res
}

// checkFirstIngest checks the first ingestion of this run's prefix. On a fresh stack every distinct snapshot is
// ingested and the second copy of one is a duplicate; on a stack that earlier runs filled, every good file is a
// duplicate of a snapshot ingested before. In both cases: every good file is either ingested or a duplicate, the
// ingested ones are distinct snapshots, the observations are theirs, and the bad files are reported with a reason.
func checkFirstIngest(t *testing.T, r Run, d Data, res ingestResult) {
	for _, p := range firstIngestProblems(r, d, res) {
		t.Error(p)
	}
	t.Logf("%d files ingested (%d observations), %d duplicates of known snapshots, %d bad files reported",
		res.FilesIngested, res.Observations, res.SkippedByReason[reasonDuplicate], res.FilesFailed)
}

// firstIngestProblems is checkFirstIngest's rule, as a pure function.
func firstIngestProblems(r Run, d Data, res ingestResult) []string {
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	good, bad := d.Samples.Good, d.Samples.Bad
	if res.FilesSeen != len(good)+len(bad) {
		errorf("files seen %d, want %d", res.FilesSeen, len(good)+len(bad))
	}
	if res.FilesIngested+res.SkippedByReason[reasonDuplicate] != len(good) || res.FilesSkipped != res.SkippedByReason[reasonDuplicate] {
		errorf("ingested %d + duplicates %d (skipped %d: %v) should add up to the %d good files",
			res.FilesIngested, res.SkippedByReason[reasonDuplicate], res.FilesSkipped, res.SkippedByReason, len(good))
	}
	duplicate := map[string]bool{}
	for _, s := range res.Skipped {
		name, ok := strings.CutPrefix(s.Key, r.FlightPrefix())
		if !ok || !strings.HasPrefix(s.Reason, reasonDuplicate) {
			errorf("skipped %s: %q", s.Key, s.Reason)
		}
		duplicate[name] = true
	}
	wantObs := 0
	ingested := map[float64]string{}
	for _, s := range good {
		if duplicate[s.Name] {
			continue
		}
		now := d.Oracle.Snapshots[s.Name]
		if other, twice := ingested[now]; twice {
			errorf("%s and %s hold the same snapshot; both were ingested", other, s.Name)
		}
		ingested[now] = s.Name
		wantObs += d.Oracle.Observations[now]
	}
	if len(ingested) != res.FilesIngested || res.Observations != wantObs {
		names := slices.Sorted(maps.Values(ingested))
		errorf("ingested %d files, %d observations; the files not reported as duplicates are %v: %d observations",
			res.FilesIngested, res.Observations, names, wantObs)
	}
	var failed []string
	for _, f := range res.Failed {
		failed = append(failed, f.Key)
		if strings.TrimSpace(f.Reason) == "" {
			errorf("%s failed without a reason", f.Key)
		}
	}
	var wantFailed []string
	for _, s := range bad {
		wantFailed = append(wantFailed, r.FlightPrefix()+s.Name)
	}
	slices.Sort(failed)
	if res.FilesFailed != len(bad) || !slices.Equal(failed, wantFailed) {
		errorf("failed %d %v, want %v", res.FilesFailed, failed, wantFailed)
	}
	return problems
}

// fetchStats returns the served statistics of each aircraft, as bodies, fetched a few at a time.
func fetchStats(t *testing.T, tg Target, icaos []string) map[string]string {
	t.Helper()
	const parallel = 8
	out := make(map[string]string, len(icaos))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for _, h := range icaos {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			resp, err := tg.Call(t, http.MethodGet, "/aircraft-stats/"+url.PathEscape(h), nil, NoAuth)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("stats %s: %v", h, err)
			case resp.Status != http.StatusOK:
				t.Errorf("stats %s: %s", h, resp)
			default:
				out[h] = resp.Body
			}
		}()
	}
	wg.Wait()
	return out
}

// checkStatistics compares the served statistics of the picked aircraft with the oracle, and returns them.
func checkStatistics(t *testing.T, tg Target, o *Oracle, picked []string) map[string]string {
	got := fetchStats(t, tg, picked)
	wrong, emergencies := 0, 0
	for _, h := range picked {
		body, ok := got[h]
		if !ok {
			continue
		}
		var s Stats
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Errorf("stats %s: %v", h, err)
			continue
		}
		if diffs := o.Aircraft[h].Diff(s); len(diffs) > 0 {
			wrong++
			if wrong <= 10 {
				t.Error(strings.Join(diffs, "\n"))
			}
		}
		if s.HadEmergency {
			emergencies++
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d aircraft differ from the oracle", wrong, len(picked))
	}
	if emergencies == 0 {
		t.Error("no checked aircraft had an emergency; the samples hold one")
	}
	// Addresses are case-insensitive.
	if resp := tg.MustCall(t, http.MethodGet, "/aircraft-stats/"+strings.ToUpper(picked[0]), nil, NoAuth); resp.Status != http.StatusOK ||
		resp.Body != got[picked[0]] {
		t.Errorf("upper-case address: %s", resp)
	}
	t.Logf("checked %d of %d aircraft against the oracle (%d with an emergency)", len(picked), len(o.Aircraft), emergencies)
	return got
}

// aircraftPage is one page of GET /api/v1/aircraft.
type aircraftPage struct {
	Items []struct {
		ICAO         string  `json:"icao"`
		Registration *string `json:"registration"`
		Type         *string `json:"type"`
	} `json:"items"`
	Next *string `json:"next"`
}

// listAll walks the aircraft list with pages of limit, checking each page's shape, and returns the pages' items.
func listAll(t *testing.T, tg Target, limit int) (items []string, pages []aircraftPage) {
	t.Helper()
	after := ""
	for {
		resp := tg.MustCall(t, http.MethodGet, fmt.Sprintf("/api/v1/aircraft?limit=%d&after=%s", limit, url.QueryEscape(after)), nil, NoAuth)
		var p aircraftPage
		if resp.Status != http.StatusOK || resp.JSON(&p) != nil {
			t.Fatalf("list after %q: %s", after, resp)
		}
		if len(p.Items) > limit {
			t.Fatalf("page of %d items with limit %d", len(p.Items), limit)
		}
		for _, it := range p.Items {
			items = append(items, it.ICAO)
		}
		pages = append(pages, p)
		if p.Next == nil {
			return items, pages
		}
		if len(p.Items) != limit || *p.Next != p.Items[len(p.Items)-1].ICAO {
			t.Fatalf("a page with a next must be full and end at next: %d items, next %q", len(p.Items), *p.Next)
		}
		after = *p.Next
	}
}

// checkList walks the aircraft list with two page sizes: the same aircraft in order, none twice, every one of the
// oracle's among them with its registration and type.
func checkList(t *testing.T, tg Target, o *Oracle) {
	items, pages := listAll(t, tg, 997)
	if !slices.IsSorted(items) || len(slices.Compact(slices.Clone(items))) != len(items) {
		t.Error("the pages are not in address order, or repeat an aircraft")
	}
	seen := map[string]bool{}
	for _, p := range pages {
		for _, it := range p.Items {
			seen[it.ICAO] = true
			w := o.Aircraft[it.ICAO]
			if w == nil {
				continue // another run's data: not this oracle's business
			}
			if show(it.Registration) != show(nilIfEmpty(w.Registration)) || show(it.Type) != show(nilIfEmpty(w.Type)) {
				t.Errorf("list: %s registration %v type %v, want %q %q", it.ICAO, show(it.Registration), show(it.Type), w.Registration, w.Type)
			}
		}
	}
	missing := 0
	for h := range o.Aircraft {
		if !seen[h] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of the oracle's %d aircraft are not listed", missing, len(o.Aircraft))
	}
	other, _ := listAll(t, tg, 1000)
	if !slices.Equal(items, other) {
		t.Errorf("pages of 997 and of 1000 list different aircraft (%d and %d)", len(items), len(other))
	}
	t.Logf("listed %d aircraft in %d pages", len(items), len(pages))
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
