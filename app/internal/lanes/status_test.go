package lanes

import (
	"testing"
	"time"
)

var statuses = []Status{Pending, Downloading, Downloaded, Failed}

// The moves of docs/downloads.md's "Status in MongoDB", written out: every pair but downloading → pending and
// downloaded → downloading.
func TestCanMove(t *testing.T) {
	refused := map[[2]Status]bool{{Downloading, Pending}: true, {Downloaded, Downloading}: true}
	for _, from := range append(statuses, "", "archived") {
		for _, to := range statuses {
			want := !refused[[2]Status{from, to}]
			if got := CanMove(from, to); got != want {
				t.Errorf("CanMove(%q, %q) = %v, want %v", from, to, got, want)
			}
		}
		for _, to := range []Status{"", "archived", "Downloaded"} {
			if CanMove(from, to) {
				t.Errorf("CanMove(%q, %q) = true for a status that is none of the four", from, to)
			}
		}
	}
}

func TestFinal(t *testing.T) {
	want := map[Status]bool{Downloaded: true, Failed: true}
	for _, s := range append(statuses, "") {
		if s.Final() != want[s] {
			t.Errorf("%q.Final() = %v, want %v", s, s.Final(), want[s])
		}
	}
}

func TestChangeCheck(t *testing.T) {
	ok, failed := &Outcome{Status: Downloaded}, &Outcome{Status: Failed, Error: "gone"}
	for _, c := range []struct {
		from    Status
		started bool
		out     *Outcome
		valid   bool
	}{
		{Pending, true, nil, true},
		{Pending, true, ok, true},
		{Pending, false, failed, true},
		{Failed, true, nil, true},
		{Downloading, true, nil, true}, // left by a download that died
		{Downloading, false, ok, true},
		{Downloaded, true, nil, false}, // a downloaded record is not marked downloading
		{Downloaded, true, ok, true},   // fetched again: its end, one more attempt
		{Downloaded, false, failed, true},
		{Pending, false, nil, false},                                 // nothing happened
		{Pending, true, &Outcome{Status: Downloading}, false},        // an end that is not one
		{Pending, false, &Outcome{Status: Pending}, false},           // idem
		{Failed, true, &Outcome{Status: "downloaded!"}, false},       // not a status
		{"", true, nil, true},                                        // put in by hand: like pending
		{Downloading, false, &Outcome{Status: Failed}, true},         // a running download's end
		{Downloaded, false, &Outcome{Status: Downloaded}, true},      // found in place, recorded anew
		{Failed, false, &Outcome{Status: Downloaded, Size: 1}, true}, // its start written earlier
	} {
		ch := Change{Record: Record{Key: "k", Status: c.from}, Started: c.started, Outcome: c.out}
		if err := ch.Check(); (err == nil) != c.valid {
			t.Errorf("%+v from %q: Check() = %v, want valid %v", ch, c.from, err, c.valid)
		}
	}
}

func TestChangeApply(t *testing.T) {
	now := time.Date(2024, 2, 14, 15, 0, 0, 0, time.UTC)
	before := Record{Key: "k", Status: Failed, Attempts: 2, LastError: "gone", Size: 7, ETag: "e1", VersionID: "v1",
		LocalPath: "/old", Checksum: "md5:x"}

	start := Change{Record: before, Started: true}.Apply(now)
	want := before
	want.Status, want.Attempts, want.UpdatedAt = Downloading, 3, now
	if start != want {
		t.Errorf("start: %+v, want %+v", start, want)
	}

	done := Change{Record: before, Started: true, Outcome: &Outcome{Status: Downloaded, LocalPath: "/d/k", Size: 9,
		Checksum: "crc32c:y", ETag: "e2"}}.Apply(now)
	want = Record{Key: "k", Status: Downloaded, Attempts: 3, Size: 9, ETag: "e2", VersionID: "v1", LocalPath: "/d/k",
		Checksum: "crc32c:y", UpdatedAt: now}
	if done != want {
		t.Errorf("downloaded: %+v, want %+v", done, want)
	}

	// An end whose start was written: no attempt more; the file's place kept.
	fail := Change{Record: done, Outcome: &Outcome{Status: Failed, Error: "claim lost"}}.Apply(now.Add(time.Second))
	want = done
	want.Status, want.LastError, want.UpdatedAt = Failed, "claim lost", now.Add(time.Second)
	if fail != want {
		t.Errorf("failed: %+v, want %+v", fail, want)
	}
}

func TestRecorded(t *testing.T) {
	r := Record{Status: Downloaded, LocalPath: "/d/a", Checksum: "crc32c:y", Size: 9, ETag: "e", VersionID: "v"}
	o := Outcome{Status: Downloaded, LocalPath: "/d/a", Checksum: "crc32c:y", Size: 9, ETag: "e", VersionID: "v"}
	if !Recorded(r, o) {
		t.Error("the same file, object and checksum: not recorded")
	}
	o2 := o
	o2.ETag, o2.VersionID = "", "" // the engine did not learn them: not a difference
	if !Recorded(r, o2) {
		t.Error("an outcome without ETag and version: not recorded")
	}
	for name, mod := range map[string]func(*Record, *Outcome){
		"failed record":  func(r *Record, _ *Outcome) { r.Status = Failed },
		"error left":     func(r *Record, _ *Outcome) { r.LastError = "x" },
		"other place":    func(_ *Record, o *Outcome) { o.LocalPath = "/d/b" },
		"other checksum": func(_ *Record, o *Outcome) { o.Checksum = "md5:z" },
		"other size":     func(_ *Record, o *Outcome) { o.Size = 8 },
		"other ETag":     func(_ *Record, o *Outcome) { o.ETag = "f" },
		"other version":  func(_ *Record, o *Outcome) { o.VersionID = "w" },
		"failed outcome": func(_ *Record, o *Outcome) { o.Status = Failed },
	} {
		r, o := r, o
		mod(&r, &o)
		if Recorded(r, o) {
			t.Errorf("%s: recorded", name)
		}
	}
}

// FuzzChange checks the rules as a whole: a change Check accepts makes a record whose status CanMove allows from the
// one it was, final exactly when the change is an end, with one more attempt exactly when it is a start; and applying
// it to what it made (written twice) changes nothing more but the attempt of a start, which Change computes from the
// record as read.
func FuzzChange(f *testing.F) {
	f.Add(uint8(0), true, uint8(4), "err")
	f.Add(uint8(2), false, uint8(2), "")
	f.Fuzz(func(t *testing.T, from uint8, started bool, end uint8, msg string) {
		all := append(statuses, "", "x")
		c := Change{Record: Record{Key: "k", Status: all[int(from)%len(all)], Attempts: int(from) % 5}, Started: started}
		if e := int(end) % (len(all) + 1); e < len(all) {
			c.Outcome = &Outcome{Status: all[e], Error: msg}
		}
		if c.Check() != nil {
			return
		}
		now := time.Unix(int64(from), 0)
		got := c.Apply(now)
		if !CanMove(c.Record.Status, got.Status) || got.Status.Final() != (c.Outcome != nil) {
			t.Fatalf("%+v made %q from %q", c, got.Status, c.Record.Status)
		}
		if want := c.Record.Attempts + map[bool]int{true: 1}[started]; got.Attempts != want {
			t.Fatalf("attempts %d, want %d", got.Attempts, want)
		}
		again := c
		again.Record = got
		twice := again.Apply(now)
		twice.Attempts = got.Attempts
		if twice != got {
			t.Fatalf("applied twice: %+v, once: %+v", twice, got)
		}
	})
}
