package backfill

import "testing"

// No more workers than batches: the default data set (219 snapshots) in batches of 100 keeps 3 of 4 workers busy.
func TestWorkersForBatches(t *testing.T) {
	for _, c := range []struct {
		files         int64
		size, workers int
		want          int
	}{
		{219, 100, 4, 3}, {219, 100, 2, 2}, {200, 100, 4, 2}, {201, 100, 4, 3}, {30, 200, 4, 1}, {0, 100, 4, 1},
	} {
		if got := workersFor(c.files, c.size, c.workers); got != c.want {
			t.Errorf("%d files in batches of %d, %d workers: %d busy, want %d", c.files, c.size, c.workers, got, c.want)
		}
	}
}
