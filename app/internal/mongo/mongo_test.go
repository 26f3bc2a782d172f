package mongo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aircraftdata/platform/app/internal/lanes"
	"github.com/aircraftdata/platform/app/internal/mongo"
	"github.com/aircraftdata/platform/app/internal/mongo/mongotest"
)

var (
	ctx = context.Background()
	t0  = time.Date(2024, 2, 14, 14, 0, 0, 0, time.UTC)
)

func rec(key, lane string, ts time.Time, size int64, etag string) lanes.Record {
	return lanes.Record{Key: key, LaneID: lane, Timestamp: ts, Size: size, ETag: etag}
}

func TestIndexes(t *testing.T) {
	db := mongotest.NewDB(t)
	s := db.Store(t)
	cur, err := db.Records.Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var idx []bson.M
	if err := cur.All(ctx, &idx); err != nil {
		t.Fatal(err)
	}
	found := map[string]bson.M{}
	for _, i := range idx {
		found[fmt.Sprint(i["name"])] = i
	}
	if u, ok := found["s3_key_unique"]; !ok || u["unique"] != true {
		t.Errorf("no unique index on s3_key: %v", idx)
	}
	if h, ok := found["lane_id_timestamp_s3_key"]; !ok || !regexp.MustCompile(`lane_id.*timestamp.*s3_key`).MatchString(fmt.Sprint(h["key"])) {
		t.Errorf("no (lane_id, timestamp, s3_key) index: %v", idx)
	}
	// The file list's status filter, in key order, reads an index.
	if h, ok := found["status_s3_key"]; !ok || !regexp.MustCompile(`status.*s3_key`).MatchString(fmt.Sprint(h["key"])) {
		t.Errorf("no (status, s3_key) index: %v", idx)
	}
	// The unique index holds against inserts by hand too.
	doc := bson.D{{Key: "s3_key", Value: "k"}, {Key: "lane_id", Value: "l"}}
	if _, err := db.Records.InsertOne(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Records.InsertOne(ctx, doc); err == nil {
		t.Error("a second record with the same key was accepted")
	}
	// Opening again (another instance starting) is fine.
	if err := s.EnsureIndexes(ctx); err != nil {
		t.Errorf("EnsureIndexes again: %v", err)
	}
	// A collection with the earlier hour index (lane_id, timestamp) loses it: the new one serves its queries.
	old := driver.IndexModel{Keys: bson.D{{Key: "lane_id", Value: 1}, {Key: "timestamp", Value: 1}}, Options: options.Index().SetName("lane_id_timestamp")}
	if _, err := db.Records.Indexes().CreateOne(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureIndexes(ctx); err != nil {
		t.Fatalf("EnsureIndexes with the earlier index: %v", err)
	}
	specs, err := db.Records.Indexes().ListSpecifications(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sp := range specs {
		names = append(names, sp.Name)
	}
	slices.Sort(names)
	if want := []string{"_id_", "lane_id_timestamp_s3_key", "s3_key_unique", "status_s3_key"}; !slices.Equal(names, want) {
		t.Errorf("indexes %v, want %v", names, want)
	}
}

// An hour's records come in (timestamp, key) order, whatever order they were written in.
func TestForHourOrder(t *testing.T) {
	s := mongotest.Store(t)
	t1 := t0.Add(time.Minute)
	rs := []lanes.Record{ // registered out of order, one by one
		rec("z/lane1/2024/02/14/14/x", "lane1", t0, 10, "e1"),
		rec("b/lane1/2024/02/14/14/y", "lane1", t1, 10, "e2"),
		rec("a/lane1/2024/02/14/14/y", "lane1", t1, 10, "e3"),
		rec("a/lane1/2024/02/14/14/x", "lane1", t0, 10, "e4"),
	}
	for _, r := range rs {
		if _, err := s.Register(ctx, []lanes.Record{r}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := lanes.NewHour("lane1", "2024-02-14", 14)
	var got []string
	if err := s.ForHour(ctx, h, func(batch []lanes.Record) error {
		for _, r := range batch {
			got = append(got, r.Key)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"a/lane1/2024/02/14/14/x", "z/lane1/2024/02/14/14/x", "a/lane1/2024/02/14/14/y", "b/lane1/2024/02/14/14/y"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestRegisterIsIdempotent(t *testing.T) {
	db := mongotest.NewDB(t)
	s := db.Store(t)
	now := time.Now().UTC()
	rs := []lanes.Record{
		rec("p/lane1/2024/02/14/14/a", "lane1", t0, 10, "e1"),
		rec("p/lane1/2024/02/14/14/b", "lane1", t0, 20, "e2"),
		rec("p/lane2/2024/02/14/14/c", "lane2", t0, 30, "e3"),
	}
	got, err := s.Register(ctx, rs, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != (lanes.RegisterResult{Added: 3}) {
		t.Errorf("first registration: %+v, want 3 added", got)
	}
	got, err = s.Register(ctx, rs, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != (lanes.RegisterResult{Unchanged: 3}) {
		t.Errorf("rerun: %+v, want 3 unchanged", got)
	}
	n, _ := db.Records.CountDocuments(ctx, bson.D{})
	if n != 3 {
		t.Errorf("%d documents, want 3", n)
	}

	a, err := s.Get(ctx, rs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != lanes.Pending || a.Size != 10 || a.ETag != "e1" || a.LaneID != "lane1" || !a.Timestamp.Equal(t0) || a.Attempts != 0 {
		t.Errorf("stored record: %+v", a)
	}

	// b is downloaded; then its object changes: back to pending, new etag.
	finish(t, s, rs[1].Key, lanes.Outcome{Status: lanes.Downloaded, LocalPath: "/x/b", ETag: "e2", Size: 20})
	changed := rs[1]
	changed.ETag, changed.Size = "e2b", 21
	got, err = s.Register(ctx, []lanes.Record{rs[0], changed, rs[2]}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got != (lanes.RegisterResult{Updated: 1, Unchanged: 2}) {
		t.Errorf("after a change: %+v, want 1 updated, 2 unchanged", got)
	}
	b, _ := s.Get(ctx, rs[1].Key)
	if b.Status != lanes.Pending || b.ETag != "e2b" || b.Size != 21 || b.LocalPath != "" {
		t.Errorf("changed record: %+v", b)
	}

	// A downloaded record registered again as it is stays downloaded.
	finish(t, s, rs[2].Key, lanes.Outcome{Status: lanes.Downloaded, LocalPath: "/x/c", ETag: "e3", Size: 30})
	if got, _ := s.Register(ctx, rs[2:], now); got != (lanes.RegisterResult{Unchanged: 1}) {
		t.Errorf("registering a downloaded record again: %+v", got)
	}
	if c, _ := s.Get(ctx, rs[2].Key); c.Status != lanes.Downloaded || c.LocalPath != "/x/c" {
		t.Errorf("downloaded record after re-registration: %+v", c)
	}

	// Unknown size/etag (-1, "") are neither compared nor overwritten.
	if got, _ := s.Register(ctx, []lanes.Record{{Key: rs[0].Key, LaneID: "lane1", Timestamp: t0, Size: -1}}, now); got != (lanes.RegisterResult{Unchanged: 1}) {
		t.Errorf("registering without size/etag: %+v", got)
	}
	if a, _ := s.Get(ctx, rs[0].Key); a.Size != 10 || a.ETag != "e1" {
		t.Errorf("size/etag overwritten: %+v", a)
	}
}

func TestRegisterManyInBatches(t *testing.T) {
	s := mongotest.Store(t)
	var rs []lanes.Record
	for i := range 2500 {
		rs = append(rs, rec(fmt.Sprintf("k/%05d", i), "lane1", t0.Add(time.Duration(i)*time.Second), int64(i), fmt.Sprint(i)))
	}
	rs = append(rs, rs[7]) // the same key twice in one call
	got, err := s.Register(ctx, rs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.Added != 2500 || got.Added+got.Updated+got.Unchanged != len(rs) {
		t.Errorf("got %+v, want 2500 added of %d", got, len(rs))
	}
	list, err := s.List(ctx, mongo.Query{LaneID: "lane1", From: t0, To: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2500 {
		t.Errorf("%d records in the hour, want 2500", len(list))
	}

	// Many updates at once (FerretDB 1.24 deadlocks on an update command of 100 statements or more: the store must
	// split them).
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var changed []lanes.Record
	var cs []lanes.Change
	for _, r := range rs[:150] {
		r.ETag += "-changed"
		changed = append(changed, r)
		cs = append(cs, lanes.Change{Record: r, Started: true, Outcome: &lanes.Outcome{Status: lanes.Failed, Error: "x"}})
	}
	if got, err := s.Register(tctx, changed, time.Now()); err != nil || got.Updated != 150 {
		t.Fatalf("150 changed records: %+v, %v", got, err)
	}
	if err := s.Update(tctx, cs, time.Now()); err != nil {
		t.Fatalf("update 150: %v", err)
	}
	if failed, _ := s.List(tctx, mongo.Query{Status: lanes.Failed}); len(failed) != 150 {
		t.Errorf("%d failed records, want 150", len(failed))
	}
}

func TestListAndForHour(t *testing.T) {
	s := mongotest.Store(t)
	rs := []lanes.Record{
		rec("a", "lane1", t0.Add(-time.Nanosecond*1e6), 1, "x"), // 13:59:59.999
		rec("b", "lane1", t0, 1, "x"),
		rec("c", "lane1", t0.Add(59*time.Minute+59*time.Second), 1, "x"),
		rec("d", "lane1", t0.Add(time.Hour), 1, "x"),
		rec("e", "lane2", t0.Add(time.Minute), 1, "x"),
	}
	if _, err := s.Register(ctx, rs, time.Now()); err != nil {
		t.Fatal(err)
	}
	h, _ := lanes.NewHour("lane1", "2024-02-14", 14)
	got, _, err := forHour(s, h)
	if err != nil {
		t.Fatal(err)
	}
	if keys(got) != "b,c" {
		t.Errorf("ForHour = %s, want b,c", keys(got))
	}
	page, _ := s.List(ctx, mongo.Query{Limit: 2})
	next, _ := s.List(ctx, mongo.Query{Limit: 2, After: page[len(page)-1].Key})
	if keys(page) != "a,b" || keys(next) != "c,d" {
		t.Errorf("pages %s then %s", keys(page), keys(next))
	}
	finish(t, s, "e", lanes.Outcome{Status: lanes.Failed, Error: "boom"})
	failed, _ := s.List(ctx, mongo.Query{Status: lanes.Failed})
	if keys(failed) != "e" || failed[0].LastError != "boom" {
		t.Errorf("failed records: %+v", failed)
	}
}

// forHour collects what ForHour hands out, sorted by key, and how many batches it came in.
func forHour(s *mongo.Store, h lanes.Hour) (rs []lanes.Record, batches int, err error) {
	err = s.ForHour(ctx, h, func(b []lanes.Record) error {
		rs = append(rs, b...)
		batches++
		return nil
	})
	slices.SortFunc(rs, func(a, b lanes.Record) int { return strings.Compare(a.Key, b.Key) })
	return rs, batches, err
}

// An hour comes in batches, each record once, and stops when told to.
func TestForHourInBatches(t *testing.T) {
	s := mongotest.Store(t)
	var rs, want []lanes.Record
	for i := range 100 {
		lane := "lane1"
		if i%3 == 0 {
			lane = "lane2"
		}
		r := rec(fmt.Sprintf("k%03d", i), lane, t0.Add(time.Duration(i)*time.Second), 1, "x")
		rs = append(rs, r)
		if lane == "lane1" {
			want = append(want, r)
		}
	}
	if _, err := s.Register(ctx, rs, time.Now()); err != nil {
		t.Fatal(err)
	}
	h, _ := lanes.NewHour("lane1", "2024-02-14", 14)
	got, batches, err := forHour(s, h)
	if err != nil {
		t.Fatal(err)
	}
	if keys(got) != keys(want) {
		t.Errorf("ForHour = %s, want %s", keys(got), keys(want))
	}
	if batches < 2 {
		t.Errorf("%d records in %d batch: the first files would wait for the whole hour", len(got), batches)
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.ForHour(ctx, h, func([]lanes.Record) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn failing: ForHour = %v after %d calls, want stop after 1", err, calls)
	}
}

func keys(rs []lanes.Record) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += ","
		}
		s += r.Key
	}
	return s
}

// finish records that key's file was downloaded once more, ending as o.
func finish(t *testing.T, s *mongo.Store, key string, o lanes.Outcome) {
	t.Helper()
	r, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, []lanes.Change{{Record: r, Started: true, Outcome: &o}}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func claimCount(t *testing.T, db *mongotest.DB) int64 {
	t.Helper()
	n, err := db.Claims.CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStatus(t *testing.T) {
	s := mongotest.Store(t)
	if _, err := s.Register(ctx, []lanes.Record{rec("k1", "lane1", t0, 5, "e"), rec("k2", "lane1", t0, 6, "e")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()

	// Both start: downloading, one attempt each.
	r1, _ := s.Get(ctx, "k1")
	r2, _ := s.Get(ctx, "k2")
	if err := s.Update(ctx, []lanes.Change{{Record: r1, Started: true}, {Record: r2, Started: true}}, now); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k1", "k2"} {
		if r, _ := s.Get(ctx, k); r.Status != lanes.Downloading || r.Attempts != 1 || !r.UpdatedAt.Equal(now.Truncate(time.Millisecond)) {
			t.Errorf("%s started: %+v", k, r)
		}
	}
	// A start written again (its batch failed in part, and the end carries the start once more) is still one attempt.
	if err := s.Update(ctx, []lanes.Change{{Record: r1, Started: true}}, now); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(ctx, "k1"); r.Attempts != 1 {
		t.Errorf("start written twice: %d attempts, want 1", r.Attempts)
	}
	// Their download died; a second one reads the records, then fails k1 and downloads k2, each started and ended in
	// one write.
	r1, _ = s.Get(ctx, "k1")
	r2, _ = s.Get(ctx, "k2")
	later := now.Add(4 * time.Minute)
	err := s.Update(ctx, []lanes.Change{
		{Record: r1, Started: true, Outcome: &lanes.Outcome{Status: lanes.Failed, Error: "cut"}},
		{Record: r2, Started: true, Outcome: &lanes.Outcome{Status: lanes.Downloaded, LocalPath: "/d/k2", ETag: "e", VersionID: "v1", Size: 6, Checksum: "crc32c:AAAAAA=="}},
	}, later)
	if err != nil {
		t.Fatal(err)
	}
	r1, _ = s.Get(ctx, "k1")
	if r1.Status != lanes.Failed || r1.LastError != "cut" || r1.Attempts != 2 {
		t.Errorf("after failure: %+v", r1)
	}
	r2, _ = s.Get(ctx, "k2")
	if r2.Status != lanes.Downloaded || r2.LastError != "" || r2.LocalPath != "/d/k2" || r2.VersionID != "v1" || r2.Checksum == "" || r2.Attempts != 2 {
		t.Errorf("after success: %+v", r2)
	}
	// Success clears the error.
	finish(t, s, "k1", lanes.Outcome{Status: lanes.Downloaded, LocalPath: "/d/k1", Size: 5})
	if r1, _ = s.Get(ctx, "k1"); r1.Status != lanes.Downloaded || r1.LastError != "" || r1.Attempts != 3 {
		t.Errorf("after retry: %+v", r1)
	}
}

// A batch with a change the status rules refuse (lanes.Change.Check: a downloaded record marked downloading) is written
// not at all: the store persists what the rules allow, and fails loudly on a bug that breaks them.
func TestStatusRefusesWhatTheRulesRefuse(t *testing.T) {
	s := mongotest.Store(t)
	if _, err := s.Register(ctx, []lanes.Record{rec("k1", "lane1", t0, 5, "e"), rec("k2", "lane1", t0, 6, "e")}, time.Now()); err != nil {
		t.Fatal(err)
	}
	finish(t, s, "k1", lanes.Outcome{Status: lanes.Downloaded, LocalPath: "/d/k1", Size: 5})
	r1, _ := s.Get(ctx, "k1")
	r2, _ := s.Get(ctx, "k2")
	err := s.Update(ctx, []lanes.Change{
		{Record: r2, Started: true, Outcome: &lanes.Outcome{Status: lanes.Failed, Error: "cut"}},
		{Record: r1, Started: true},
	}, time.Now())
	if err == nil || !strings.Contains(err.Error(), `"downloaded" may not become "downloading"`) {
		t.Errorf("Update = %v, want the refused move", err)
	}
	if got, _ := s.Get(ctx, "k1"); got.Status != lanes.Downloaded || got.Attempts != r1.Attempts {
		t.Errorf("k1 after the refused batch: %+v, want as it was", got)
	}
	if got, _ := s.Get(ctx, "k2"); got.Status != lanes.Pending || got.Attempts != 0 || got.LastError != "" {
		t.Errorf("k2 after the refused batch: %+v, want as it was", got)
	}
}

// claimer returns a function that claims a name for an owner at a time, for a minute, and reports whether it won; an
// error fails the test.
func claimer(t *testing.T, s *mongo.Store) func(name, owner string, at time.Time) bool {
	return func(name, owner string, at time.Time) bool {
		t.Helper()
		won, err := s.Claim(ctx, name, owner, at, time.Minute)
		if err != nil {
			t.Fatalf("%s claims %s: %v", owner, name, err)
		}
		return won
	}
}

func TestClaims(t *testing.T) {
	db := mongotest.NewDB(t)
	s := db.Store(t)
	now := time.Now().UTC()
	claim := claimer(t, s)
	if !claim("h1", "A", now) {
		t.Fatal("A could not claim h1")
	}
	if !claim("h1", "A", now.Add(time.Second)) {
		t.Fatal("A's retry of its claim on h1 failed")
	}
	if claim("h1", "B", now) {
		t.Error("B claimed h1 while A holds it")
	}
	if !claim("h2", "B", now) {
		t.Error("B could not claim h2, which nobody holds")
	}

	// A renews, so B still cannot claim after A's first lease would have ended.
	if err := s.Renew(ctx, "h1", "A", now.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if claim("h1", "B", now.Add(2*time.Minute)) {
		t.Error("B took a renewed claim")
	}
	// A dies: once its lease has expired, C takes over.
	later := now.Add(4 * time.Minute)
	if !claim("h1", "C", later) {
		t.Fatal("C could not take over A's expired claim")
	}
	if claim("h1", "A", later) {
		t.Error("A, back from the dead, claimed h1 again while C holds it")
	}
	if n := claimCount(t, db); n != 2 {
		t.Errorf("%d claims, want 2 (h1 by C, h2 by B; no takeover token left)", n)
	}

	// A renewal or a release by another owner leaves a claim alone; the renewal says the claim is lost.
	if err := s.Renew(ctx, "h1", "A", later.Add(time.Hour)); !errors.Is(err, lanes.ErrClaimLost) {
		t.Fatalf("A renewing C's claim: %v, want claim lost", err)
	}
	if err := s.Release(ctx, "h1", "A"); err != nil {
		t.Fatal(err)
	}
	if claim("h1", "D", later) {
		t.Error("D claimed h1: A's release let C's claim go")
	}
	if !claim("h1", "D", later.Add(2*time.Minute)) {
		t.Error("D could not take over C's claim once expired: A's renewal extended it")
	}
	// Its owner's release lets it go at once.
	if err := s.Release(ctx, "h2", "B"); err != nil {
		t.Fatal(err)
	}
	if !claim("h2", "D", now) {
		t.Error("D could not claim h2 once B let it go")
	}
}

// A takeover removes only the expired claim it read: if its owner renews it in between, the claim stays the owner's and
// the taker loses.
func TestTakeoverOfARenewedClaim(t *testing.T) {
	s := mongotest.Store(t)
	now := time.Now().UTC()
	claim := claimer(t, s)
	if !claim("h", "A", now) {
		t.Fatal("A could not claim h")
	}
	s.OnTakeover(func() { // A wakes up just after B read its expired claim
		if err := s.Renew(ctx, "h", "A", now.Add(10*time.Minute)); err != nil {
			t.Errorf("A's renewal: %v", err)
		}
	})
	if claim("h", "B", now.Add(2*time.Minute)) {
		t.Error("B took over the claim A had just renewed")
	}
	s.OnTakeover(nil)
	if err := s.Renew(ctx, "h", "A", now.Add(11*time.Minute)); err != nil {
		t.Errorf("A's claim after B's attempt: %v, want still A's", err)
	}
	if claim("h", "C", now.Add(5*time.Minute)) {
		t.Error("C claimed h while A's renewed lease runs")
	}
}

// A taker that dies between inserting its takeover token and replacing the expired claim holds the claim up for the
// token's lease, not for good.
func TestClaimTakeoverByDeadTaker(t *testing.T) {
	db := mongotest.NewDB(t)
	s := db.Store(t)
	now := time.Now().UTC()
	claim := claimer(t, s)
	if !claim("h", "A", now) {
		t.Fatal("A could not claim h")
	}
	// A dies; at +2 min its claim has expired and T dies taking it over.
	dead := now.Add(2 * time.Minute)
	if err := s.DieTakingOver(ctx, "h", dead.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if claim("h", "B", dead.Add(time.Second)) {
		t.Error("B took h over while T's takeover could still be under way")
	}
	if !claim("h", "B", dead.Add(31*time.Second)) {
		t.Fatal("B could not take h over once T's takeover token had expired")
	}
	if claim("h", "C", dead.Add(32*time.Second)) {
		t.Error("C claimed h while B holds it")
	}
	if n := claimCount(t, db); n != 1 {
		t.Errorf("%d claim documents, want 1 (h by B; T's and B's takeover tokens gone)", n)
	}
}

// Records put in by hand (as the seed's users had to) have ids of their own: status changes still reach them.
func TestHandInsertedRecord(t *testing.T) {
	db := mongotest.NewDB(t)
	s := db.Store(t)
	if _, err := db.Records.InsertOne(ctx, bson.D{{Key: "s3_key", Value: "hand"}, {Key: "lane_id", Value: "lane1"},
		{Key: "timestamp", Value: t0}, {Key: "status", Value: "pending"}}); err != nil {
		t.Fatal(err)
	}
	h, _ := lanes.NewHour("lane1", "2024-02-14", 14)
	rs, _, err := forHour(s, h)
	if err != nil || len(rs) != 1 || rs[0].ID == nil {
		t.Fatalf("ForHour: %+v, %v", rs, err)
	}
	if err := s.Update(ctx, []lanes.Change{{Record: rs[0], Started: true, Outcome: &lanes.Outcome{Status: lanes.Failed, Error: "x"}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Get(ctx, "hand"); r.Status != lanes.Failed || r.Attempts != 1 {
		t.Errorf("hand-inserted record after a failed download: %+v", r)
	}
}

func TestReRegistrationDuringDownload(t *testing.T) {
	s := mongotest.Store(t)
	r0 := rec("k", "lane1", t0, 5, "old")
	if _, err := s.Register(ctx, []lanes.Record{r0}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, []lanes.Change{{Record: r0, Started: true}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	r1 := r0
	r1.ETag = "new"
	if got, _ := s.Register(ctx, []lanes.Record{r1}, time.Now()); got.Updated != 1 {
		t.Fatalf("re-registration: %+v", got)
	}
	if r, _ := s.Get(ctx, "k"); r.Status != lanes.Downloading || r.ETag != "new" {
		t.Errorf("re-registration during a download: %+v", r)
	}
}

// TestClaimIsExclusive races claimers on the same names, fresh, expired, and expired with a dead taker's takeover
// token: every name is won exactly once.
func TestClaimIsExclusive(t *testing.T) {
	s := mongotest.Store(t)
	names := []string{"lane1/2024/02/14/14", "lane1/2024/02/14/15", "lane2/2024/02/14/14"}
	race := func(now time.Time) map[string]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := map[string]int{}
		for i := range 12 {
			for _, name := range names {
				wg.Go(func() {
					won, err := s.Claim(ctx, name, fmt.Sprint("owner", now.Unix(), "-", i), now, time.Minute)
					if err != nil {
						t.Error(err)
					}
					if won {
						mu.Lock()
						wins[name]++
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		return wins
	}
	now := time.Now()
	// Fresh, then all expired, then expired with a takeover token left by a dead taker.
	for round, at := range []time.Time{now, now.Add(5 * time.Minute), now.Add(10 * time.Minute)} {
		if round == 2 {
			for _, name := range names {
				if err := s.DieTakingOver(ctx, name, at.Add(-time.Second)); err != nil {
					t.Fatal(err)
				}
			}
		}
		wins := race(at)
		for _, name := range names {
			if wins[name] != 1 {
				t.Errorf("round %d: %s won %d times, want once", round, name, wins[name])
			}
		}
	}
}

// A CA file that cannot verify anything fails Open at once, before any connection (no server needed).
func TestOpenRefusesABadCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{notPEM, filepath.Join(dir, "missing.pem")} {
		s, err := mongo.Open(ctx, mongo.Options{URL: "mongodb://127.0.0.1:1/?tls=true", Database: "d", Collection: "c", TLSCAFile: file})
		if err == nil {
			_ = s.Close(ctx)
			t.Errorf("Open with CA file %s: no error", filepath.Base(file))
		} else if !strings.Contains(err.Error(), "CA file") {
			t.Errorf("Open with CA file %s: %v (want it to name the CA file)", filepath.Base(file), err)
		}
	}
}

// The file list (anonymous reads) has a client of its own, so that its connections are never the downloads'; the store
// closes both.
func TestListHasAClientOfItsOwn(t *testing.T) {
	db := mongotest.NewDB(t)
	s, err := mongo.Open(ctx, mongo.Options{URL: db.URL, Database: db.Name, Collection: mongotest.Collection, ReadConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !s.ListsApart() {
		t.Error("the list shares the work's client")
	}
	t0 := time.Date(2024, 2, 14, 14, 0, 0, 0, time.UTC)
	if _, err := s.Register(ctx, []lanes.Record{rec("a", "lane1", t0, 1, "e"), rec("b", "lane1", t0, 1, "e")}, t0); err != nil {
		t.Fatal(err)
	}
	// One connection, many lists at once: they take turns.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got, err := s.List(ctx, mongo.Query{LaneID: "lane1"}); err != nil || keys(got) != "a,b" {
				t.Errorf("list: %s, %v", keys(got), err)
			}
		})
	}
	wg.Wait()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, mongo.Query{}); err == nil {
		t.Error("a list after Close answered")
	}
}
