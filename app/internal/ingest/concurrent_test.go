package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aircraftdata/platform/app/internal/bucket"
	"github.com/aircraftdata/platform/app/internal/flight/flighttest"
	"github.com/aircraftdata/platform/app/internal/postgres"
	"github.com/aircraftdata/platform/app/internal/stacktest"
)

// synthetic is a readsb-hist snapshot at now of a random half of pool, with every kind of value the statistics use
// ("ground", emergencies, a registration that changes).
func synthetic(rng *rand.Rand, now float64, pool []string) []byte {
	var aircraft []map[string]any
	for _, hex := range pool {
		if rng.IntN(2) == 0 {
			continue
		}
		a := map[string]any{"hex": hex, "gs": float64(rng.IntN(6000)) / 10}
		if rng.IntN(4) == 0 {
			a["alt_baro"] = "ground"
		} else {
			a["alt_baro"] = rng.IntN(45000)
		}
		if rng.IntN(3) > 0 {
			a["r"], a["t"] = fmt.Sprintf("N%d", rng.IntN(3)), []string{"A320", "B738"}[rng.IntN(2)]
		}
		if rng.IntN(20) == 0 {
			a["emergency"] = []string{"general", "minfuel"}[rng.IntN(2)]
		}
		aircraft = append(aircraft, a)
	}
	data, err := json.Marshal(map[string]any{"now": now, "messages": 1, "aircraft": aircraft})
	if err != nil {
		panic(err)
	}
	return data
}

// listed returns the objects of the bucket as a listing gives them.
func listed(t *testing.T, b bucket.Bucket) []bucket.Object {
	t.Helper()
	var objs []bucket.Object
	if err := b.List(context.Background(), "", func(page []bucket.Object) error { objs = append(objs, page...); return nil }); err != nil {
		t.Fatal(err)
	}
	return objs
}

// checkStored compares every aircraft stored with the oracle, and the ledger with the keys: each once, with the outcome
// wanted. An outcome "snapshot N" is a key of one of the files of snapshot N: one of them is ingested, the others are
// its duplicates (which one depends on the runs' timing).
func checkStored(t *testing.T, db *postgres.DB, dbURL string, want flighttest.Oracle, outcomes map[string]string) {
	t.Helper()
	ctx := context.Background()
	want.Check(t, db)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var aircraft int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM aircraft_stats`).Scan(&aircraft); err != nil || aircraft != len(want) {
		t.Errorf("aircraft stored: %d, %v; want %d", aircraft, err, len(want))
	}
	rows, _ := conn.Query(ctx, `SELECT key, outcome FROM ingested_objects`)
	got := map[string]string{}
	var key, outcome string
	if _, err := pgx.ForEachRow(rows, []any{&key, &outcome}, func() error {
		if got[key] != "" {
			t.Errorf("%s is in the ledger twice (%s, %s)", key, got[key], outcome)
		}
		got[key] = outcome
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ingested := map[string]int{}
	for k, o := range outcomes {
		switch {
		case strings.HasPrefix(o, "snapshot ") && got[k] == "ingested":
			ingested[o]++
		case strings.HasPrefix(o, "snapshot ") && got[k] == "duplicate-snapshot":
		case got[k] != o:
			t.Errorf("ledger: %s is %q, want %q", k, got[k], o)
		}
	}
	for k, o := range outcomes {
		if strings.HasPrefix(o, "snapshot ") && ingested[o] != 1 {
			t.Errorf("ledger: %s: %d files ingested, want 1 (%s is %q)", o, ingested[o], k, got[k])
		}
	}
	if len(got) != len(outcomes) {
		t.Errorf("ledger: %d keys, want %d", len(got), len(outcomes))
	}
}

// Eight workers, each with its own connections, commit overlapping batches at once: the same keys in several batches,
// the same snapshot under two keys in two batches, shuffled, some batches run twice, a file that fails to decode in
// several. The statistics equal the oracle's, the ledger holds each key once, and the runs' results add up to one count
// of each file.
func TestConcurrentWorkersCountOnce(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, dbURL := stacktest.DB(t)
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]string, 80)
	for i := range pool {
		pool[i] = fmt.Sprintf("c%05x", i)
	}
	want := flighttest.Oracle{}
	outcomes := map[string]string{}
	for i := range 40 {
		now := 1698800000 + 5*float64(i) + 0.1
		data := synthetic(rng, now, pool)
		key := fmt.Sprintf("s/%02d.json", i)
		stacktest.Put(t, b, key, data)
		want.Add(t, data)
		outcomes[key] = fmt.Sprint("snapshot ", i)
		if i%5 == 0 { // the same snapshot under another key
			stacktest.Put(t, b, fmt.Sprintf("t/%02d.json", i), data)
			outcomes[fmt.Sprintf("t/%02d.json", i)] = fmt.Sprint("snapshot ", i)
		}
	}
	for _, n := range []string{"20231101-000030Z.json", "20231101-000315Z.json", "20231101-000315Z.json.gz"} {
		stacktest.Put(t, b, "real/"+n, stacktest.Sample(t, n))
		outcomes["real/"+n] = "snapshot " + n[:15]
	}
	want.Add(t, stacktest.Sample(t, "20231101-000030Z.json"))
	want.Add(t, stacktest.Sample(t, "20231101-000315Z.json"))
	bad, err := os.ReadFile(filepath.Join(stacktest.SamplesDir(t), "bad", "20231101-000030Z.cut-mid-record.json"))
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Put(t, b, "real/bad.json", bad)
	outcomes["real/bad.json"] = "failed"
	objs := listed(t, b)

	// Batches of 10 from three shuffles of the objects (each in three batches), a quarter of them run twice.
	var batches [][]bucket.Object
	for range 3 {
		perm := rng.Perm(len(objs))
		for len(perm) > 0 {
			n := min(10, len(perm))
			batch := make([]bucket.Object, n)
			for i, j := range perm[:n] {
				batch[i] = objs[j]
			}
			perm = perm[n:]
			batches = append(batches, batch)
			if rng.IntN(4) == 0 {
				batches = append(batches, batch)
			}
		}
	}
	rng.Shuffle(len(batches), func(i, j int) { batches[i], batches[j] = batches[j], batches[i] })

	const workers = 8
	var (
		mu      sync.Mutex
		results []*Result
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for w := range workers {
		wdb, err := stacktest.OpenDB(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(wdb.Close)
		s := &Service{DB: wdb, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: 2, Limits: defaultLimits()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := w; i < len(batches); i += workers {
				res, err := s.Process(ctx, batches[i], Request{}, nil)
				if err != nil {
					t.Errorf("worker %d, batch %d: %v", w, i, err)
					return
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	var ingested, failed, dups, lost int
	var observations int64
	for _, r := range results {
		ingested += r.FilesIngested
		failed += r.FilesFailed
		dups += r.SkippedByReason[reasonDuplicateSnapshot]
		observations += r.Observations
		for _, n := range r.Skipped {
			if strings.Contains(n.Reason, "another run at the same time") {
				lost++
			}
		}
	}
	t.Logf("%d batches, %d files set aside because another run committed them first", len(batches), lost)
	if ingested != 42 || dups != 9 || observations != want.Observations() {
		t.Errorf("the runs ingested %d files (%d observations) and found %d duplicates; want 42 (%d), 9",
			ingested, observations, dups, want.Observations())
	}
	if failed < 1 {
		t.Errorf("the bad file was quarantined by no run")
	}
	if lost == 0 {
		t.Error("no run lost a file to another: the batches did not overlap in time")
	}
	checkStored(t, db, dbURL, want, outcomes)
}

// pause makes every statement inserting into table (aircraft_stats, contents) of the sessions named like app wait for
// the advisory lock (9, 9), which the returned connection holds until release.
func pause(t *testing.T, dbURL, table, app string) (conn *pgx.Conn, release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	for _, q := range []string{
		`CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF current_setting('application_name') LIKE '` + app + `' THEN PERFORM pg_advisory_xact_lock_shared(9, 9); END IF;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER pause BEFORE INSERT ON ` + table + ` FOR EACH STATEMENT EXECUTE FUNCTION pause()`,
		`SELECT pg_advisory_lock(9, 9)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return conn, func() {
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(9, 9)`); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFor polls query (true or false) on conn until it is true.
func waitFor(t *testing.T, conn *pgx.Conn, query string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		if err := conn.QueryRow(context.Background(), query).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", query)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two batches of other snapshots with the same 3000 aircraft, listed in opposite orders, merge into aircraft_stats at
// the same moment (both held just before the merge, then let go together): neither fails, and PostgreSQL detected no
// deadlock (the rows are locked in one order; a retry of a deadlock would hide it from the result, not from the count).
func TestSameAircraftInTwoBatchesNoDeadlock(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, dbURL := stacktest.DB(t)
	var hexes []string
	for i := range 3000 {
		hexes = append(hexes, fmt.Sprintf("d%05x", i))
	}
	want := flighttest.Oracle{}
	for i, name := range []string{"up.json", "down.json"} {
		var recs []string
		for _, h := range hexes {
			recs = append(recs, fmt.Sprintf(`{"hex": %q, "alt_baro": %d, "gs": %d}`, h, 1000+i, 100+i))
		}
		if i == 1 {
			for l, r := 0, len(recs)-1; l < r; l, r = l+1, r-1 {
				recs[l], recs[r] = recs[r], recs[l]
			}
		}
		data := fmt.Appendf(nil, `{"now": %d, "aircraft": [%s]}`, 1698900000+i, strings.Join(recs, ","))
		stacktest.Put(t, b, name, data)
		want.Add(t, data)
	}
	objs := listed(t, b)
	conn, release := pause(t, dbURL, "aircraft_stats", "%")
	var before int64
	if err := conn.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&before); err != nil {
		t.Fatal(err)
	}

	errs := make(chan error, 2)
	var pools []*postgres.DB
	for i := range objs {
		wdb, err := stacktest.OpenDB(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		pools = append(pools, wdb)
		s := &Service{DB: wdb, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: 1, Limits: defaultLimits()}
		go func() {
			_, err := s.Process(ctx, objs[i:i+1], Request{}, nil)
			errs <- err
		}()
	}
	waitFor(t, conn, `SELECT count(*) = 2 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)
	release()
	for range objs {
		if err := <-errs; err != nil {
			t.Errorf("a batch failed: %v", err)
		}
	}
	// A backend writes its statistics (deadlocks detected) before it leaves pg_stat_activity.
	db.Close()
	for _, p := range pools {
		p.Close()
	}
	waitFor(t, conn, `SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = current_database()`)
	var after int64
	if _, err := conn.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("PostgreSQL detected %d deadlocks", after-before)
	}
	checkStored(t, reopen(t, dbURL), dbURL, want, map[string]string{"up.json": "snapshot 0", "down.json": "snapshot 1"})
}

func reopen(t *testing.T, dbURL string) *postgres.DB {
	t.Helper()
	db, err := stacktest.OpenDB(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// Two runs read the same list under two ETags of its key (the second a multipart re-upload) and claim its bytes at the
// same moment (both held just before the claim, then let go together): the list counts once, and the ledger records one
// version ingested and the other its duplicate.
func TestSameListBytesInTwoRunsCountOnce(t *testing.T) {
	ctx := context.Background()
	b := stacktest.Bucket(t)
	db, dbURL := stacktest.DB(t)
	list := []byte(`[{"icao": "a00001", "altitude": 1000, "speed": 100}, {"icao": "a00001", "altitude": 3000, "speed": 300}]`)
	const key = "list.json"
	stacktest.Put(t, b, key, list)
	conn, release := pause(t, dbURL, "contents", "%")
	s := &Service{DB: db, Bucket: b, Log: slog.New(slog.DiscardHandler), Workers: 1, Limits: defaultLimits()}
	results := make(chan *Result, 2)
	process := func(objs []bucket.Object) {
		res, err := s.Process(ctx, objs, Request{}, nil)
		if err != nil {
			t.Error(err)
		}
		results <- res
	}
	first := listed(t, b)
	go process(first)
	waitFor(t, conn, `SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)
	multipartPut(t, b, key, list)
	second := listed(t, b)
	if second[0].ETag == first[0].ETag {
		t.Fatalf("the multipart upload kept ETag %s: the test needs a new one", first[0].ETag)
	}
	go process(second)
	waitFor(t, conn, `SELECT count(*) = 2 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)
	release()
	var ingested, dups int
	for range 2 {
		if r := <-results; r != nil {
			ingested += r.FilesIngested
			dups += r.SkippedByReason[reasonDuplicateContent]
		}
	}
	if ingested != 1 || dups != 1 {
		t.Errorf("the runs ingested %d and found %d duplicates, want 1 and 1", ingested, dups)
	}
	st, err := db.Stats(ctx, "a00001")
	if err != nil || st.Observations != 2 {
		t.Fatalf("a00001: %+v, %v; want the list's 2 observations", st, err)
	}
	var outcomes []string
	rows, _ := conn.Query(ctx, `SELECT outcome FROM ingested_objects ORDER BY outcome`)
	outcomes, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(outcomes, []string{"duplicate-content", "ingested"}) {
		t.Errorf("ledger: %v, %v; want one version ingested and one duplicate-content", outcomes, err)
	}
}
