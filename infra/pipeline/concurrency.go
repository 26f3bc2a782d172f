package pipeline

// How many workers the database takes (docs/infra.md "Ingestion pipeline: concurrency"). Every connection is bounded by
// a pool's size, never by the work, so the database's connections are counted here from the pools' bounds; the workers'
// share of them bounds the function's concurrency.
const (
	// rdsBytesPerConnection is RDS PostgreSQL's default max_connections: LEAST(DBInstanceClassMemory/9531392, 5000).
	rdsBytesPerConnection = 9531392
	rdsMaxConnections     = 5000
	// reservedConnections are kept for superusers and RDS's own agents (superuser_reserved_connections 3,
	// rds.rds_superuser_reserved_connections 2) and an operator's psql session or two.
	reservedConnections = 3 + 2 + 2
	// serviceConnections are an aircraftd's at most: its work pool (pgx's default size, max(4, CPUs): 4 on the one or
	// two vCPUs of the instance types it runs on), DB_READ_MAX_CONNS (2) and its ping connection.
	serviceConnections = 4 + 2 + 1
	// workerReadConns is the worker's DB_READ_MAX_CONNS; workerConnections a worker's at most: its work pool (4, pgx's
	// default on the function's one or two vCPUs), that read pool and its ping connection.
	workerReadConns   = 1
	workerConnections = 4 + workerReadConns + 1
	// LiveConcurrency is the most workers the queue of new objects runs at once: the least an SQS event source allows
	// (2). A feed writes a snapshot every 5 s; one worker ingests one in well under a second.
	LiveConcurrency = 2
	// minWorkers is the least the function may run: the queue's two and one backfill batch.
	minWorkers = LiveConcurrency + 1
)

// MaxConnections is RDS PostgreSQL's default max_connections for an instance class of memoryBytes. RDS counts
// DBInstanceClassMemory after what it keeps for the operating system and its agents, a quarter of a 1 GiB class in
// practice (db.t3.micro reports about 80, not 112): three quarters of the class's memory are counted.
func MaxConnections(memoryBytes int64) int {
	return int(min(memoryBytes*3/4/rdsBytesPerConnection, rdsMaxConnections))
}

// DefaultWorkers is the default of the function's concurrency: the connections left by the reserved ones and those of
// serviceInstances aircraftd instances, divided by a worker's at most, and at least minWorkers (a fleet of many
// instances on a small database overcommits it on its own: grow the database or pass workerConcurrency).
func DefaultWorkers(maxConnections, serviceInstances int) int {
	free := maxConnections - reservedConnections - serviceInstances*serviceConnections
	return max(free/workerConnections, minWorkers)
}

// BackfillConcurrency is the Distributed Map's MaxConcurrency (aircraftd's BACKFILL_CONCURRENCY, with
// BACKFILL_MAX_RUNNING 1): the workers that the queue of new objects does not take.
func BackfillConcurrency(workers int, live bool) int {
	if live {
		return workers - LiveConcurrency
	}
	return workers
}
