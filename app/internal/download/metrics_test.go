package download_test

import (
	"maps"
	"sync"
	"time"
)

// counts is what a Downloader told its Metrics.
type counts struct {
	files                                     map[string]int
	bytes                                     int64
	retries, resumes, checksumFailures, hours int
}

func (c counts) equal(o counts) bool {
	return maps.Equal(c.files, o.files) && c.bytes == o.bytes && c.retries == o.retries && c.resumes == o.resumes &&
		c.checksumFailures == o.checksumFailures && c.hours == o.hours
}

// countingMetrics counts what a Downloader tells it.
type countingMetrics struct {
	mu sync.Mutex
	c  counts
}

func (m *countingMetrics) DownloadFileEnded(outcome string, bytes int64, checksumFailed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c.files == nil {
		m.c.files = map[string]int{}
	}
	m.c.files[outcome]++
	m.c.bytes += bytes
	if checksumFailed {
		m.c.checksumFailures++
	}
}

func (m *countingMetrics) DownloadRetried(checksumFailed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.c.retries++
	if checksumFailed {
		m.c.checksumFailures++
	}
}

func (m *countingMetrics) DownloadResumed() { m.mu.Lock(); defer m.mu.Unlock(); m.c.resumes++ }

func (m *countingMetrics) DownloadHour(time.Duration) { m.mu.Lock(); defer m.mu.Unlock(); m.c.hours++ }

func (m *countingMetrics) counts() counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.c
	c.files = maps.Clone(c.files)
	return c
}
