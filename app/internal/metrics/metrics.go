// Package metrics owns the service's Prometheus registry: every metric it exports is defined here, once (name, help,
// labels), and served by Handler on a listener of its own (METRICS_ADDR). The domain packages do not import Prometheus:
// each declares the small interface it tells what happened (ingest.Metrics, download.Metrics, jobs.Metrics,
// middleware.RequestMetrics), and *Metrics implements them all.
//
// Labels are bounded by the code, never by input: a route template (or "unmatched"), a method, a status, an outcome or
// reason class, a job kind, a pool name. No key, icao or job id is ever a label.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric of the service.
const Namespace = "aircraft"

// Unmatched is the route label of a request that matched no route: its path is not a label (anyone can send any path).
const Unmatched = "unmatched"

// Metrics is the registry and the service's metrics in it.
type Metrics struct {
	reg   *prometheus.Registry
	names []string // of the metrics defined here

	httpRequests *prometheus.CounterVec
	httpSeconds  *prometheus.HistogramVec

	ingestFiles         *prometheus.CounterVec
	ingestBytes         prometheus.Counter
	ingestObservations  prometheus.Counter
	ingestQuarantined   *prometheus.CounterVec
	ingestCommitSeconds prometheus.Histogram
	ingestBisections    prometheus.Counter

	downloadFiles            *prometheus.CounterVec
	downloadBytes            prometheus.Counter
	downloadSeconds          prometheus.Histogram
	downloadRetries          prometheus.Counter
	downloadResumes          prometheus.Counter
	downloadChecksumFailures prometheus.Counter

	jobsStarted *prometheus.CounterVec
	jobsEnded   *prometheus.CounterVec
	jobsRefused *prometheus.CounterVec
	jobs        atomic.Pointer[Jobs]
	pools       pools
}

// New returns the metrics of a process whose release is version (a hash of the release build: two releases are told
// apart), with the Go runtime's and the process's metrics.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.pools.mongo = &MongoPools{pools: map[string]*mongoPool{}}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &m.pools)
	m.gaugeFunc("build_info", "always 1: the release running, by its version (a hash of the release build)",
		prometheus.Labels{"version": version}, func() float64 { return 1 })

	m.httpRequests = m.counterVec("http_requests_total", "HTTP requests answered, by route template, method and status", "route", "method", "status")
	m.httpSeconds = m.histogramVec("http_request_duration_seconds", "time to answer an HTTP request, by route template and method",
		prometheus.DefBuckets, "route", "method")

	m.ingestFiles = m.counterVec("ingest_files_total", "files ingestion committed to its ledger or skipped, by outcome (ingested, quarantined, or the skip reason)", "outcome")
	m.ingestBytes = m.counter("ingest_bytes_total", "bytes of the files ingestion decoded (ingested or duplicates), counted when their batch is committed")
	m.ingestObservations = m.counter("ingest_observations_total", "aircraft observations of the committed ingested files")
	m.ingestQuarantined = m.counterVec("ingest_quarantined_total", "files quarantined by ingestion, by reason class (s3_refused, over_cap, corrupt, database_refused)", "reason")
	m.ingestCommitSeconds = m.histogram("ingest_batch_commit_seconds", "time of one batch commit (one transaction) of ingestion",
		prometheus.ExponentialBuckets(0.01, 2, 12))
	m.ingestBisections = m.counter("ingest_bisections_total", "batches the database refused, bisected to find the files responsible")

	m.downloadFiles = m.counterVec("download_files_total", "lane files a download ended, by outcome (downloaded, already_present, failed)", "outcome")
	m.downloadBytes = m.counter("download_bytes_total", "bytes downloaded from S3 into DOWNLOAD_PATH")
	m.downloadSeconds = m.histogram("download_hour_seconds", "time to download the files of one lane hour (one request or job)",
		prometheus.ExponentialBuckets(0.1, 2, 14))
	m.downloadRetries = m.counter("download_retries_total", "tries of a file repeated after a transient error")
	m.downloadResumes = m.counter("download_resumes_total", "files started again after an earlier download of them (its record counts attempts)")
	m.downloadChecksumFailures = m.counter("download_checksum_failures_total", "fetched files whose bytes did not match the object's checksum or size")

	m.jobsStarted = m.counterVec("jobs_started_total", "background jobs started, by kind", "kind")
	m.jobsEnded = m.counterVec("jobs_ended_total", "background jobs ended, by kind and state (succeeded, failed)", "kind", "state")
	m.jobsRefused = m.counterVec("jobs_refused_total", "jobs refused because JOBS_MAX_RUNNING were running, by kind", "kind")
	m.gaugeFunc("jobs_running", "background jobs and synchronous downloads running (a job keeps its slot until its end is saved); none wait in a queue: more are refused",
		nil, func() float64 { r, _ := m.running(); return float64(r) })
	m.gaugeFunc("jobs_max_running", "slots for jobs (JOBS_MAX_RUNNING)", nil, func() float64 { _, n := m.running(); return float64(n) })
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Names returns the name of every metric the service exports, sorted: those defined here (with their series or not yet)
// and those of the registered collectors. A histogram is named by its base name.
func (m *Metrics) Names() []string {
	names := slices.Concat(m.names, poolNames)
	if fams, err := m.reg.Gather(); err == nil {
		for _, f := range fams {
			names = append(names, f.GetName())
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Request counts an HTTP request (middleware.RequestMetrics). route is the route template, "" for none.
func (m *Metrics) Request(route, method string, status int, d time.Duration) {
	if route == "" {
		route = Unmatched
	}
	if !knownMethod(method) {
		method = "other"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpSeconds.WithLabelValues(route, method).Observe(d.Seconds())
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// IngestCommitted counts what a committed batch of ingestion held (ingest.Metrics).
func (m *Metrics) IngestCommitted(files, quarantined map[string]int, bytes, observations int64) {
	for outcome, n := range files {
		m.ingestFiles.WithLabelValues(outcome).Add(float64(n))
	}
	for reason, n := range quarantined {
		m.ingestQuarantined.WithLabelValues(reason).Add(float64(n))
	}
	m.ingestBytes.Add(float64(bytes))
	m.ingestObservations.Add(float64(observations))
}

// IngestCommit observes the time of one commit (ingest.Metrics).
func (m *Metrics) IngestCommit(d time.Duration) { m.ingestCommitSeconds.Observe(d.Seconds()) }

// IngestBisected counts a batch bisected (ingest.Metrics).
func (m *Metrics) IngestBisected() { m.ingestBisections.Inc() }

// DownloadFileEnded counts a lane file ended (download.Metrics).
func (m *Metrics) DownloadFileEnded(outcome string, bytes int64, checksumFailed bool) {
	m.downloadFiles.WithLabelValues(outcome).Inc()
	m.downloadBytes.Add(float64(bytes))
	if checksumFailed {
		m.downloadChecksumFailures.Inc()
	}
}

// DownloadRetried counts a repeated try (download.Metrics).
func (m *Metrics) DownloadRetried(checksumFailed bool) {
	m.downloadRetries.Inc()
	if checksumFailed {
		m.downloadChecksumFailures.Inc()
	}
}

// DownloadResumed counts a file started again (download.Metrics).
func (m *Metrics) DownloadResumed() { m.downloadResumes.Inc() }

// DownloadHour observes the time of one hour's download (download.Metrics).
func (m *Metrics) DownloadHour(d time.Duration) { m.downloadSeconds.Observe(d.Seconds()) }

// JobStarted counts a job started (jobs.Metrics).
func (m *Metrics) JobStarted(kind string) { m.jobsStarted.WithLabelValues(kind).Inc() }

// JobEnded counts a job ended (jobs.Metrics).
func (m *Metrics) JobEnded(kind, state string) { m.jobsEnded.WithLabelValues(kind, state).Inc() }

// JobRefused counts a job refused for want of a slot (jobs.Metrics).
func (m *Metrics) JobRefused(kind string) { m.jobsRefused.WithLabelValues(kind).Inc() }

func (m *Metrics) name(n string) string {
	n = Namespace + "_" + n
	m.names = append(m.names, n)
	return n
}

func (m *Metrics) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: m.name(name), Help: help})
	m.reg.MustRegister(c)
	return c
}

func (m *Metrics) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.name(name), Help: help}, labels)
	m.reg.MustRegister(c)
	return c
}

func (m *Metrics) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: m.name(name), Help: help, Buckets: buckets})
	m.reg.MustRegister(h)
	return h
}

func (m *Metrics) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: m.name(name), Help: help, Buckets: buckets}, labels)
	m.reg.MustRegister(h)
	return h
}

func (m *Metrics) gaugeFunc(name, help string, labels prometheus.Labels, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: m.name(name), Help: help, ConstLabels: labels}, fn))
}
