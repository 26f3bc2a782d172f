package metrics

import (
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/event"
)

// Pool stats, one series per pool ("work", "read", …) of each store.
var (
	poolNames    []string
	poolDescs    []*prometheus.Desc
	poolAcquired = poolDesc("db_pool_acquired_connections", "connections in use, by store and pool")
	poolIdle     = poolDesc("db_pool_idle_connections", "connections open and idle, by store and pool")
	poolMax      = poolDesc("db_pool_max_connections", "most connections of the pool, by store and pool")
	poolWaiting  = poolDesc("db_pool_waiting", "callers waiting for a connection now (postgres: connections being opened for a caller), by store and pool")
	poolWaits    = poolDesc("db_pool_waits_total", "acquisitions that had to wait for a connection, by store and pool")
	poolWait     = poolDesc("db_pool_wait_seconds_total", "time spent waiting for a connection, by store and pool")
)

func poolDesc(name, help string) *prometheus.Desc {
	name = Namespace + "_" + name
	d := prometheus.NewDesc(name, help, []string{"store", "pool"}, nil)
	poolNames = append(poolNames, name)
	poolDescs = append(poolDescs, d)
	return d
}

// pools collects the stats of the service's pools: PostgreSQL's read from pgxpool.Stat, MongoDB's followed by
// MongoPools.
type pools struct {
	mu       sync.Mutex
	postgres map[string]*pgxpool.Pool
	mongo    *MongoPools
}

// PostgresPools has the stats of pgx pools collected, by name.
func (m *Metrics) PostgresPools(p map[string]*pgxpool.Pool) {
	m.pools.mu.Lock()
	defer m.pools.mu.Unlock()
	m.pools.postgres = p
}

// MongoPools follows the pools of the MongoDB clients: give each client the monitor of MongoPools.Monitor.
func (m *Metrics) MongoPools() *MongoPools { return m.pools.mongo }

func (p *pools) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range poolDescs {
		ch <- d
	}
}

func (p *pools) Collect(ch chan<- prometheus.Metric) {
	p.mongo.collect(ch)
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, pool := range p.postgres {
		s := pool.Stat()
		ch <- gauge(poolAcquired, float64(s.AcquiredConns()), "postgres", name)
		ch <- gauge(poolIdle, float64(s.IdleConns()), "postgres", name)
		ch <- gauge(poolMax, float64(s.MaxConns()), "postgres", name)
		// pgx counts the acquisitions that waited, not those waiting now: the constructing ones are the nearest it has.
		ch <- gauge(poolWaiting, float64(s.ConstructingConns()), "postgres", name)
		ch <- counter(poolWaits, float64(s.EmptyAcquireCount()), "postgres", name)
		ch <- counter(poolWait, s.EmptyAcquireWaitTime().Seconds(), "postgres", name)
	}
}

// MongoPools follows the connection pools of the service's MongoDB clients through the driver's pool events: Monitor
// gives the monitor of one client.
type MongoPools struct {
	mu    sync.Mutex
	pools map[string]*mongoPool
}

type mongoPool struct {
	acquired, idle, waiting int64
	max                     uint64
	waits                   int64
	wait                    time.Duration
}

// Monitor returns the pool monitor of the client named pool, whose pool holds max connections at most.
func (m *MongoPools) Monitor(pool string, max uint64) *event.PoolMonitor {
	m.mu.Lock()
	p := &mongoPool{max: max}
	m.pools[pool] = p
	m.mu.Unlock()
	return &event.PoolMonitor{Event: func(e *event.PoolEvent) {
		m.mu.Lock()
		defer m.mu.Unlock()
		switch e.Type {
		case event.ConnectionCheckOutStarted:
			p.waiting++
		case event.ConnectionCheckOutFailed:
			p.waiting--
			p.waits++
			p.wait += e.Duration
		case event.ConnectionCheckedOut:
			p.waiting--
			p.acquired++
			p.idle = max0(p.idle - 1)
			if e.Duration > time.Millisecond { // a connection was not at hand
				p.waits++
				p.wait += e.Duration
			}
		case event.ConnectionCheckedIn:
			p.acquired--
			p.idle++
		case event.ConnectionClosed:
			p.idle = max0(p.idle - 1)
		case event.ConnectionPoolCleared, event.ConnectionPoolClosed:
			p.idle = 0
		}
	}}
}

func max0(n int64) int64 { return max(n, 0) }

func (m *MongoPools) collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.pools {
		ch <- gauge(poolAcquired, float64(p.acquired), "mongodb", name)
		ch <- gauge(poolIdle, float64(p.idle), "mongodb", name)
		ch <- gauge(poolMax, float64(p.max), "mongodb", name)
		ch <- gauge(poolWaiting, float64(p.waiting), "mongodb", name)
		ch <- counter(poolWaits, float64(p.waits), "mongodb", name)
		ch <- counter(poolWait, p.wait.Seconds(), "mongodb", name)
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// Jobs reports the jobs running and the slots for them.
type Jobs interface {
	Running() (running, max int)
}

// SetJobs gives the gauges of jobs running their source.
func (m *Metrics) SetJobs(j Jobs) { m.jobs.Store(&j) }

func (m *Metrics) running() (running, max int) {
	if j := m.jobs.Load(); j != nil {
		return (*j).Running()
	}
	return 0, 0
}
