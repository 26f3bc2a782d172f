package ingest

import (
	"maps"
	"sync"
	"time"
)

// toldCounts is what a run told its Metrics since the last take.
type toldCounts struct {
	files, quarantined  map[string]int
	bytes, observations int64
	bisections          int
}

func (c toldCounts) equal(o toldCounts) bool {
	return maps.Equal(c.files, o.files) && maps.Equal(c.quarantined, o.quarantined) && c.bytes == o.bytes &&
		c.observations == o.observations && c.bisections == o.bisections
}

// recordingMetrics adds up what ingestion tells it.
type recordingMetrics struct {
	mu      sync.Mutex
	c       toldCounts
	commits int
}

func (m *recordingMetrics) IngestCommitted(files, quarantined map[string]int, bytes, observations int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c.files == nil {
		m.c.files, m.c.quarantined = map[string]int{}, map[string]int{}
	}
	for k, n := range files {
		m.c.files[k] += n
	}
	for k, n := range quarantined {
		m.c.quarantined[k] += n
	}
	m.c.bytes += bytes
	m.c.observations += observations
}

func (m *recordingMetrics) IngestCommit(time.Duration) { m.mu.Lock(); defer m.mu.Unlock(); m.commits++ }
func (m *recordingMetrics) IngestBisected()            { m.mu.Lock(); defer m.mu.Unlock(); m.c.bisections++ }

// take returns what was told since the last take, and the commits timed.
func (m *recordingMetrics) take() (toldCounts, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, n := m.c, m.commits
	m.c, m.commits = toldCounts{files: map[string]int{}, quarantined: map[string]int{}}, 0
	if c.files == nil {
		c.files, c.quarantined = map[string]int{}, map[string]int{}
	}
	return c, n
}
