package lanes

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidLaneID(t *testing.T) {
	for _, id := range []string{"lane1", "A", "a_b-C9", strings.Repeat("x", 64)} {
		if !ValidLaneID(id) {
			t.Errorf("ValidLaneID(%q) = false, want true", id)
		}
	}
	for _, id := range []string{"", "..", "a/b", "a b", "lane1\n", "é", strings.Repeat("x", 65), "a.b"} {
		if ValidLaneID(id) {
			t.Errorf("ValidLaneID(%q) = true, want false", id)
		}
	}
}

func TestParseDate(t *testing.T) {
	want := time.Date(2024, 2, 14, 0, 0, 0, 0, time.UTC)
	for _, s := range []string{"2024-02-14", "2024-02-14T00:00:00Z", "2024-02-14T23:59:59.5Z", "2024-02-14T10:00:00+05:00", " 2024-02-14 "} {
		got, err := ParseDate(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "2024-02-30", "2024-2-14", "14/02/2024", "2024-02-14T25:00:00Z", "yesterday"} {
		if _, err := ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) accepted", s)
		}
	}
}

func TestNewHour(t *testing.T) {
	h, err := NewHour("lane1", "2024-02-14T00:00:00Z", 14)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 2, 14, 14, 0, 0, 0, time.UTC); !h.Start.Equal(want) || !h.End().Equal(want.Add(time.Hour)) {
		t.Errorf("hour = %v..%v", h.Start, h.End())
	}
	if got, want := h.Dir(), filepath.Join("lane1", "2024", "02", "14", "14"); got != want {
		t.Errorf("Dir = %q, want %q", got, want)
	}
	if !h.Contains(h.Start) || h.Contains(h.End()) || !h.Contains(h.End().Add(-time.Nanosecond)) {
		t.Error("Contains is not [start, end)")
	}

	_, err = NewHour("../x", "2024-13-01", 24)
	fields := map[string]bool{}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields[fe.Field] = true
	}
	if !fields["lane_id"] || !fields["hour"] || !fields["date"] || len(fields) != 3 {
		t.Errorf("fields named: %v, want lane_id, hour and date", fields)
	}
	for _, hour := range []int{-1, 24} {
		if _, err := NewHour("lane1", "2024-02-14", hour); err == nil {
			t.Errorf("hour %d accepted", hour)
		}
	}
}

func TestFileName(t *testing.T) {
	ok := map[string]string{
		"lanes/lane1/2024/02/14/14/a.bin": "a.bin",
		"a.bin":                           "a.bin",
		"x//y/..a":                        "..a",
		"x/y/a..":                         "a..",
		"x/.hidden":                       ".hidden",
	}
	for key, want := range ok {
		got, err := FileName(key)
		if err != nil || got != want {
			t.Errorf("FileName(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	for _, key := range []string{
		"", "/", "/etc/passwd", "lane1/2024/02/14/14/", "lane1/2024/02/14/14/..", "lane1/2024/02/14/14/.",
		"lane1/../../../etc/passwd", "../x", "a\\..\\..\\x", "a/b\x00c", "a/b\nc", "x/" + strings.Repeat("n", 256),
	} {
		if name, err := FileName(key); err == nil || !errors.Is(err, ErrUnsafeKey) {
			t.Errorf("FileName(%q) = %q, %v; want ErrUnsafeKey", key, name, err)
		}
	}
}

func TestRelPath(t *testing.T) {
	ts := time.Date(2024, 2, 14, 14, 30, 5, 0, time.UTC)
	p, err := RelPath(Record{Key: "raw/lane1/2024/02/14/14/f1.bin", LaneID: "lane1", Timestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("lane1", "2024", "02", "14", "14", "f1.bin"); p != want {
		t.Errorf("RelPath = %q, want %q", p, want)
	}
	// The lane id is validated too: records may come from anywhere.
	if _, err := RelPath(Record{Key: "a/f", LaneID: "..", Timestamp: ts}); !errors.Is(err, ErrUnsafeKey) {
		t.Errorf("lane id '..' accepted: %v", err)
	}
	// Times are taken in UTC whatever their zone.
	east := time.FixedZone("east", 3*3600)
	p, _ = RelPath(Record{Key: "f", LaneID: "l", Timestamp: time.Date(2024, 2, 15, 1, 0, 0, 0, east)})
	if want := filepath.Join("l", "2024", "02", "14", "22", "f"); p != want {
		t.Errorf("RelPath in another zone = %q, want %q", p, want)
	}
}

func TestParseKey(t *testing.T) {
	r, reason, ok := ParseKey("lanes/run7/lane1/2024/02/14/14/f.bin")
	if !ok {
		t.Fatal(reason)
	}
	if r.LaneID != "lane1" || !r.Timestamp.Equal(time.Date(2024, 2, 14, 14, 0, 0, 0, time.UTC)) || r.Status != Pending {
		t.Errorf("ParseKey = %+v", r)
	}
	if _, _, ok := ParseKey("lane1/2024/02/14/14/f.bin"); !ok {
		t.Error("key without prefix refused")
	}
	for _, key := range []string{
		"f.bin", "lane1/2024/02/14/f.bin", "x/lane1/2024/02/14/24/f", "x/lane1/2024/02/30/01/f",
		"x/lane1/2024/2/14/01/f", "x/la.ne/2024/02/14/01/f", "x/lane1/2024/02/14/01/", "x/lane1/0000/02/14/01/f",
	} {
		if _, _, ok := ParseKey(key); ok {
			t.Errorf("ParseKey(%q) accepted", key)
		}
	}
}
