package e2e

import (
	"strings"
	"testing"
	"time"
)

// The first-ingestion rule against answers a correct service gives on a fresh and on a used stack, and against answers
// of broken ones.
func TestFirstIngestRule(t *testing.T) {
	d := LoadData(t)
	r := NewRun(time.Now())
	key := func(name string) string { return r.FlightPrefix() + name }
	failed := []fileNote{
		{key("bad/20231101-000030Z.cut-mid-record.json"), "decode: unexpected end of JSON input (truncated file?)"},
		{key("bad/20231101-000315Z.cut-mid-record.json"), "decode: unexpected end of JSON input (truncated file?)"},
	}
	dup := func(name string) fileNote {
		return fileNote{key(name), reasonDuplicate + ": the snapshot of … was already ingested from …"}
	}
	total := d.Oracle.TotalObservations()
	fresh := ingestResult{FilesSeen: 6, FilesIngested: 3, FilesSkipped: 1, SkippedByReason: map[string]int{reasonDuplicate: 1},
		Skipped: []fileNote{dup("20231101-000315Z.json")}, FilesFailed: 2, Failed: failed, Observations: total}
	used := ingestResult{FilesSeen: 6, FilesSkipped: 4, SkippedByReason: map[string]int{reasonDuplicate: 4},
		Skipped: []fileNote{dup("20231101-000030Z.json"), dup("20231101-000315Z.json"), dup("20231101-000315Z.json.gz"),
			dup("20231101-000700Z.json.gz")}, FilesFailed: 2, Failed: failed}
	for name, res := range map[string]ingestResult{"fresh": fresh, "used": used} {
		if p := firstIngestProblems(r, d, res); len(p) != 0 {
			t.Errorf("%s stack: %v", name, p)
		}
	}
	// The other copy of 000315Z may be the duplicate.
	other := fresh
	other.Skipped = []fileNote{dup("20231101-000315Z.json.gz")}
	if p := firstIngestProblems(r, d, other); len(p) != 0 {
		t.Errorf("the gzip copy as the duplicate: %v", p)
	}

	broken := map[string]func(res *ingestResult){
		"both copies ingested": func(res *ingestResult) {
			res.FilesIngested, res.FilesSkipped, res.SkippedByReason, res.Skipped = 4, 0, map[string]int{}, nil
			res.Observations += d.Oracle.Observations[d.Oracle.Snapshots["20231101-000315Z.json"]]
		},
		"observations off by one": func(res *ingestResult) { res.Observations++ },
		"a bad file not reported": func(res *ingestResult) { res.FilesFailed, res.Failed = 1, res.Failed[:1] },
		"a bad file without reason": func(res *ingestResult) {
			res.Failed = []fileNote{res.Failed[0], {res.Failed[1].Key, " "}}
		},
		"a good file failed": func(res *ingestResult) {
			res.FilesIngested, res.FilesFailed = 2, 3
			res.Failed = append(res.Failed, fileNote{key("20231101-000700Z.json.gz"), "x"})
		},
		"skipped for another reason": func(res *ingestResult) {
			res.Skipped = []fileNote{{key("20231101-000315Z.json"), "too large"}}
		},
		"files of another prefix": func(res *ingestResult) { res.FilesSeen = 7 },
	}
	for name, breakIt := range broken {
		res := fresh
		res.SkippedByReason = map[string]int{reasonDuplicate: 1}
		res.Failed = append([]fileNote(nil), fresh.Failed...)
		breakIt(&res)
		if p := firstIngestProblems(r, d, res); len(p) == 0 {
			t.Errorf("%s: not noticed", name)
		} else if testing.Verbose() {
			t.Logf("%s: %s", name, strings.Join(p, "; "))
		}
	}
}
