// Package downloadtest holds the tests' one fake store of package download (Records and Claims) and of package record.
package downloadtest

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/aircraftdata/platform/app/internal/lanes"
)

// Store fakes download.Records and download.Claims: records in memory, changed by the status rules (lanes.Change) as a
// store would, every claim granted. It notes each status write, and what happened before it (Note), and fails every
// write with Err when set. Lock it to read its fields while it may be written.
type Store struct {
	sync.Mutex
	records map[string]lanes.Record // by key
	Events  []string                // "update" for each status write, and the tests' own notes
	Writes  [][]lanes.Change
	Err     error
}

// Put adds or replaces records.
func (f *Store) Put(rs ...lanes.Record) {
	f.Lock()
	defer f.Unlock()
	if f.records == nil {
		f.records = map[string]lanes.Record{}
	}
	for _, r := range rs {
		f.records[r.Key] = r
	}
}

// Note adds e to Events.
func (f *Store) Note(e string) { f.Lock(); f.Events = append(f.Events, e); f.Unlock() }

// ForHour hands fn the records of h in one batch, in (timestamp, key) order.
func (f *Store) ForHour(_ context.Context, h lanes.Hour, fn func([]lanes.Record) error) error {
	f.Lock()
	var rs []lanes.Record
	for _, r := range f.records {
		if r.LaneID == h.LaneID && h.Contains(r.Timestamp) {
			rs = append(rs, r)
		}
	}
	f.Unlock()
	slices.SortFunc(rs, func(a, b lanes.Record) int {
		return cmp.Or(a.Timestamp.Compare(b.Timestamp), cmp.Compare(a.Key, b.Key))
	})
	if len(rs) == 0 {
		return nil
	}
	return fn(rs)
}

// Update notes the batch, then applies it (lanes.Change.Apply) to the records it holds, or fails with Err, or with the
// first change the rules refuse (writing nothing).
func (f *Store) Update(_ context.Context, cs []lanes.Change, now time.Time) error {
	f.Lock()
	defer f.Unlock()
	f.Events = append(f.Events, "update")
	f.Writes = append(f.Writes, slices.Clone(cs))
	if f.Err != nil {
		return f.Err
	}
	for _, c := range cs {
		if err := c.Check(); err != nil {
			return err
		}
	}
	for _, c := range cs {
		if _, ok := f.records[c.Record.Key]; ok {
			f.records[c.Record.Key] = c.Apply(now)
		}
	}
	return nil
}

func (f *Store) Claim(context.Context, string, string, time.Time, time.Duration) (bool, error) {
	return true, nil
}
func (f *Store) Renew(context.Context, string, string, time.Time) error { return nil }
func (f *Store) Release(context.Context, string, string) error          { return nil }
