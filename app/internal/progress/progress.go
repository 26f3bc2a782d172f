// Package progress counts work done of work known, safely across goroutines, for long-running jobs (ingestion,
// downloads) to report while they run.
package progress

import "sync/atomic"

// Counter counts files and bytes. The zero value is ready; a nil *Counter counts nothing, so callers that do not watch
// progress may pass nil.
type Counter struct {
	filesTotal, filesDone, bytesTotal, bytesDone atomic.Int64
	totalKnown                                   atomic.Bool
}

// Report is a point-in-time view of a Counter.
type Report struct {
	FilesDone  int64 `json:"files_done"`
	FilesTotal int64 `json:"files_total"`
	BytesDone  int64 `json:"bytes_done"`
	BytesTotal int64 `json:"bytes_total"`
	// TotalKnown is false while the work is still being listed: the totals may still grow.
	TotalKnown bool `json:"total_known"`
}

// AddTotal adds work to do.
func (c *Counter) AddTotal(files, bytes int64) {
	if c == nil {
		return
	}
	c.filesTotal.Add(files)
	c.bytesTotal.Add(bytes)
}

// AddDone adds work done.
func (c *Counter) AddDone(files, bytes int64) {
	if c == nil {
		return
	}
	c.filesDone.Add(files)
	c.bytesDone.Add(bytes)
}

// TotalKnown marks the totals final.
func (c *Counter) TotalKnown() {
	if c != nil {
		c.totalKnown.Store(true)
	}
}

// Report returns the current counts.
func (c *Counter) Report() Report {
	if c == nil {
		return Report{}
	}
	return Report{
		FilesDone:  c.filesDone.Load(),
		FilesTotal: c.filesTotal.Load(),
		BytesDone:  c.bytesDone.Load(),
		BytesTotal: c.bytesTotal.Load(),
		TotalKnown: c.totalKnown.Load(),
	}
}
