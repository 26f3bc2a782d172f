package e2e

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"
	"time"
)

// laneFile is one object the lane check uploads.
type laneFile struct {
	Lane string
	Hour time.Time // UTC, on the hour
	Name string
	Body []byte
}

// Key is where the file goes: {prefix}{lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file}.
func (f laneFile) Key(prefix string) string { return prefix + f.Rel() }

// Rel is where the service must write it below DOWNLOAD_PATH: {lane_id}/{yyyy}/{mm}/{dd}/{hh}/{file}.
func (f laneFile) Rel() string {
	return path.Join(f.Lane, f.Hour.Format("2006"), f.Hour.Format("01"), f.Hour.Format("02"), f.Hour.Format("15"), f.Name)
}

// laneHour is what the run downloads: its lane, on 2024-02-14 at 14:00 UTC (the seed's example request).
var laneHour = time.Date(2024, 2, 14, 14, 0, 0, 0, time.UTC)

// laneFiles are the run's lane files: three in the hour it downloads (a real snapshot, a gzip one and random bytes),
// and three that the request must leave alone (the next hour, the same hour a day later, another lane).
func laneFiles(r Run, d Data) (in, out []laneFile) {
	rnd := rand.New(rand.NewPCG(uint64(len(r.ID)), 7))
	random := make([]byte, 300<<10+17)
	for i := range random {
		random[i] = byte(rnd.UintN(256))
	}
	sample := func(name string) []byte {
		for _, s := range d.Samples.Good {
			if s.Name == name {
				return s.Body
			}
		}
		return []byte("missing sample " + name)
	}
	lane := r.Lane()
	in = []laneFile{
		{lane, laneHour, "20231101-000030Z.json", sample("20231101-000030Z.json")},
		{lane, laneHour, "20231101-000315Z.json.gz", sample("20231101-000315Z.json.gz")},
		{lane, laneHour, "random.bin", random},
	}
	out = []laneFile{
		{lane, laneHour.Add(time.Hour), "next-hour.bin", random[:1000]},
		{lane, laneHour.Add(24 * time.Hour), "next-day.bin", random[:2000]},
		{lane + "-other", laneHour, "other-lane.bin", random[:3000]},
	}
	return in, out
}

// fileRecord is a file record as the API shows it.
type fileRecord struct {
	Key       string    `json:"s3_key"`
	LaneID    string    `json:"lane_id"`
	Timestamp time.Time `json:"timestamp"`
	Size      int64     `json:"size"`
	Status    string    `json:"status"`
	LocalPath string    `json:"local_path"`
	Checksum  string    `json:"checksum"`
	LastError string    `json:"last_error"`
	Outcome   string    `json:"outcome"`
}

// downloadResult is the answer to POST /api/v1/download: the seed's shape and the details.
type downloadResult struct {
	Successful     []fileRecord  `json:"successful"`
	Failed         []string      `json:"failed"`
	Failures       []laneFailure `json:"failures"`
	TotalFiles     int           `json:"total_files"`
	SuccessCount   int           `json:"success_count"`
	FailureCount   int           `json:"failure_count"`
	Downloaded     int           `json:"downloaded_count"`
	AlreadyPresent int           `json:"already_present_count"`
}

// laneFailure is a file that could not be downloaded, and why.
type laneFailure struct {
	Key    string `json:"s3_key"`
	Reason string `json:"reason"`
}

// indexResult is the answer to POST /api/v1/files/index.
type indexResult struct {
	Objects      int `json:"objects"`
	Added        int `json:"added"`
	Updated      int `json:"updated"`
	Unchanged    int `json:"unchanged"`
	SkippedCount int `json:"skipped_count"`
}

func checkLanes(t *testing.T, tg Target, r Run, d Data) {
	in, out := laneFiles(r, d)
	prefix := r.LanePrefix()
	for _, f := range append(slices.Clone(in), out...) {
		if err := tg.Store.Put(t.Context(), f.Key(prefix), f.Body); err != nil {
			t.Fatal(err)
		}
	}
	// An object that does not follow the layout: listed, not registered.
	if err := tg.Store.Put(t.Context(), prefix+"README.txt", []byte("not a lane file")); err != nil {
		t.Fatal(err)
	}
	all := len(in) + len(out)

	if !t.Run("index", func(t *testing.T) {
		res := indexLanes(t, tg, prefix)
		if res.Objects != all+1 || res.Added != all || res.SkippedCount != 1 {
			t.Errorf("index: %+v, want %d objects, %d added, 1 skipped", res, all+1, all)
		}
		again := indexLanes(t, tg, prefix)
		if again.Objects != all+1 || again.Added != 0 || again.Updated != 0 || again.Unchanged != all {
			t.Errorf("index again: %+v, want all %d unchanged", again, all)
		}
	}) {
		return
	}

	t.Run("list", func(t *testing.T) {
		recs := listFiles(t, tg, r.Lane())
		want := map[string]laneFile{}
		for _, f := range append(slices.Clone(in), out...) {
			if f.Lane == r.Lane() {
				want[f.Key(prefix)] = f
			}
		}
		if len(recs) != len(want) {
			t.Errorf("%d records of lane %s, want %d: %+v", len(recs), r.Lane(), len(want), recs)
		}
		for _, rec := range recs {
			f, ok := want[rec.Key]
			switch {
			case !ok:
				t.Errorf("unexpected record %+v", rec)
			case rec.LaneID != f.Lane || !rec.Timestamp.Equal(f.Hour) || rec.Size != int64(len(f.Body)) || rec.Status != "pending":
				t.Errorf("record %+v, want lane %s, hour %s, size %d, pending", rec, f.Lane, f.Hour, len(f.Body))
			}
		}
	})

	t.Run("download", func(t *testing.T) { checkLaneDownload(t, tg, r, in, out) })
	t.Run("missing object", func(t *testing.T) { checkMissingObject(t, tg, r) })
}

// checkLaneDownload downloads the hour of the files in, whole and verified, leaving out (other hours) alone; again,
// finding them all there; and checks their records' status.
func checkLaneDownload(t *testing.T, tg Target, r Run, in, out []laneFile) {
	prefix := r.LanePrefix()
	req := map[string]any{"lane_id": r.Lane(), "hour": laneHour.Hour(), "date": laneHour.Format("2006-01-02") + "T00:00:00Z"}
	res := download(t, tg, req)
	if res.TotalFiles != len(in) || res.SuccessCount != len(in) || res.FailureCount != 0 || len(res.Failed) != 0 {
		t.Fatalf("download: total %d, success %d, failures %d %v; want %d downloaded", res.TotalFiles,
			res.SuccessCount, res.FailureCount, res.Failures, len(in))
	}
	checkDownloaded(t, tg, prefix, in, res.Successful, "downloaded")
	for _, f := range out {
		if tg.ReadDownload == nil {
			break
		}
		if _, err := tg.ReadDownload(f.Rel()); err == nil {
			t.Errorf("%s was downloaded, but it is not in the requested hour", f.Rel())
		}
	}

	// Again: nothing to fetch, every file already there, whole.
	again := download(t, tg, req)
	if again.SuccessCount != len(in) || again.FailureCount != 0 || again.AlreadyPresent != len(in) || again.Downloaded != 0 {
		t.Errorf("second download: %+v, want %d already present", again, len(in))
	}
	checkDownloaded(t, tg, prefix, in, again.Successful, "already present")

	for _, rec := range listFiles(t, tg, r.Lane()) {
		wantStatus := "pending"
		if rec.Timestamp.Equal(laneHour) {
			wantStatus = "downloaded"
		}
		if rec.Status != wantStatus {
			t.Errorf("%s: status %s, want %s", rec.Key, rec.Status, wantStatus)
		}
	}
}

// checkMissingObject downloads an hour whose one record has no object in the bucket: reported failed, with the reason,
// in the answer and in the record.
func checkMissingObject(t *testing.T, tg Target, r Run) {
	prefix := r.LanePrefix()
	hour := laneHour.Add(3 * time.Hour)
	key := prefix + path.Join(r.Lane(), hour.Format("2006/01/02/15"), "gone.bin")
	rec := map[string]any{"s3_key": key, "lane_id": r.Lane(), "timestamp": hour.Add(17 * time.Minute).Format(time.RFC3339)}
	resp := tg.MustCall(t, http.MethodPost, "/api/v1/files", map[string]any{"records": []any{rec}}, WithToken)
	var reg struct {
		Added     int `json:"added"`
		Unchanged int `json:"unchanged"`
	}
	if resp.Status != http.StatusOK || resp.JSON(&reg) != nil || reg.Added != 1 {
		t.Fatalf("register %s: %s", key, resp)
	}
	// Registering is idempotent.
	resp = tg.MustCall(t, http.MethodPost, "/api/v1/files", map[string]any{"records": []any{rec}}, WithToken)
	if resp.Status != http.StatusOK || resp.JSON(&reg) != nil || reg.Added != 0 || reg.Unchanged != 1 {
		t.Errorf("register %s again: %s", key, resp)
	}
	res := download(t, tg, map[string]any{"lane_id": r.Lane(), "hour": hour.Hour(), "date": hour.Format("2006-01-02")})
	if res.TotalFiles != 1 || res.FailureCount != 1 || res.SuccessCount != 0 || !slices.Equal(res.Failed, []string{key}) ||
		len(res.Failures) != 1 || res.Failures[0].Key != key || res.Failures[0].Reason == "" {
		t.Errorf("download of a missing object: %+v", res)
	}
	if tg.ReadDownload != nil {
		if _, err := tg.ReadDownload(path.Join(r.Lane(), hour.Format("2006/01/02/15"), "gone.bin")); err == nil {
			t.Error("a file was written for an object that does not exist")
		}
	}
	for _, rec := range listFiles(t, tg, r.Lane()) {
		if rec.Key == key && (rec.Status != "failed" || rec.LastError == "") {
			t.Errorf("record of the missing object: status %s, last error %q; want failed with the reason", rec.Status, rec.LastError)
		}
	}
}

func indexLanes(t *testing.T, tg Target, prefix string) indexResult {
	t.Helper()
	resp := tg.MustCall(t, http.MethodPost, "/api/v1/files/index", map[string]any{"prefix": prefix}, WithToken)
	var res indexResult
	if resp.Status != http.StatusOK || resp.JSON(&res) != nil {
		t.Fatalf("index %s: %s", prefix, resp)
	}
	return res
}

func listFiles(t *testing.T, tg Target, lane string) []fileRecord {
	t.Helper()
	resp := tg.MustCall(t, http.MethodGet, "/api/v1/files?lane_id="+url.QueryEscape(lane), nil, WithToken)
	var page struct {
		Items []fileRecord `json:"items"`
	}
	if resp.Status != http.StatusOK || resp.JSON(&page) != nil {
		t.Fatalf("list files of %s: %s", lane, resp)
	}
	return page.Items
}

func download(t *testing.T, tg Target, req map[string]any) downloadResult {
	t.Helper()
	resp := tg.MustCall(t, http.MethodPost, "/api/v1/download", req, WithToken)
	var res downloadResult
	if resp.Status != http.StatusOK || resp.JSON(&res) != nil {
		t.Fatalf("download %v: %s", req, resp)
	}
	return res
}

// checkDownloaded compares what the service reports (and, locally, what it wrote) with the uploaded files.
func checkDownloaded(t *testing.T, tg Target, prefix string, want []laneFile, got []fileRecord, outcome string) {
	t.Helper()
	byKey := map[string]fileRecord{}
	for _, rec := range got {
		byKey[rec.Key] = rec
	}
	for _, f := range want {
		rec, ok := byKey[f.Key(prefix)]
		if !ok {
			t.Errorf("%s is not among the successful files", f.Key(prefix))
			continue
		}
		if rec.Outcome != outcome || rec.Status != "downloaded" {
			t.Errorf("%s: outcome %q, status %q; want %q, downloaded", f.Name, rec.Outcome, rec.Status, outcome)
		}
		if rec.Size != int64(len(f.Body)) {
			t.Errorf("%s: size %d, uploaded %d", f.Name, rec.Size, len(f.Body))
		}
		if err := VerifyChecksum(rec.Checksum, f.Body); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
		if !strings.HasSuffix(rec.LocalPath, "/"+f.Rel()) {
			t.Errorf("%s: local path %s, want DOWNLOAD_PATH/%s", f.Name, rec.LocalPath, f.Rel())
		}
		if tg.ReadDownload == nil {
			continue
		}
		disk, err := tg.ReadDownload(f.Rel())
		switch {
		case err != nil:
			t.Errorf("%s: %v", f.Name, err)
		case !bytes.Equal(disk, f.Body):
			t.Errorf("%s: %d bytes on disk differ from the %d uploaded", f.Rel(), len(disk), len(f.Body))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d successful files, want %d", len(got), len(want))
	}
}
