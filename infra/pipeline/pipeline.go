package pipeline

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsrds"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
)

// Props configures the pipeline.
type Props struct {
	StackName              string // the state machine is named after it
	Vpc                    awsec2.IVpc
	CodeDir                string // WorkerCode's folder
	Database               awsrds.DatabaseInstance
	Bucket                 awss3.Bucket
	LiveIngestion          bool
	Workers                int // the function's reserved concurrency: LiveConcurrency for the queue, the rest for backfills
	MemoryMB               int
	TimeoutSeconds         int
	LiveBatchSize          int
	LiveBatchWindowSeconds int
	LogRetentionDays       int
	Stage                  string
	Protected              bool
}

// Pipeline is the three boxes of ingestion at scale: the worker, the backfill state machine that runs it over the
// bucket's listing, and (unless turned off) the queue of new objects that runs it live.
type Pipeline struct {
	Worker   *Worker
	Backfill *Backfill
	Live     *Live // nil without live ingestion
	// BackfillConcurrency is the map's MaxConcurrency, which aircraftd passes in each execution's input.
	BackfillConcurrency int
}

// New makes the pipeline's boxes in scope (the stack), as Worker, Backfill and LiveIngestion.
func New(scope constructs.Construct, props *Props) *Pipeline {
	worker := NewWorker(scope, "Worker", &WorkerProps{
		Vpc: props.Vpc, CodeDir: props.CodeDir, Database: props.Database, Bucket: props.Bucket, MemoryMB: props.MemoryMB,
		TimeoutSeconds: props.TimeoutSeconds, ReservedConcurrency: props.Workers, LogRetentionDays: props.LogRetentionDays,
	})
	p := &Pipeline{
		Worker: worker,
		Backfill: NewBackfill(scope, "Backfill", &BackfillProps{
			Name: props.StackName + "-backfill", Worker: worker, Bucket: props.Bucket, LogRetentionDays: props.LogRetentionDays,
			Stage: props.Stage, Protected: props.Protected,
		}),
		BackfillConcurrency: BackfillConcurrency(props.Workers, props.LiveIngestion),
	}
	if props.LiveIngestion {
		p.Live = NewLive(scope, "LiveIngestion", &LiveProps{
			Worker: worker, Bucket: props.Bucket, TimeoutSeconds: props.TimeoutSeconds, BatchSize: props.LiveBatchSize,
			BatchWindowSeconds: props.LiveBatchWindowSeconds,
		})
	}
	return p
}

// GrantBackfills lets aircraftd's role run backfills on the state machine (Backfill.GrantRun).
func (p *Pipeline) GrantBackfills(grantee awsiam.IGrantable) { p.Backfill.GrantRun(grantee) }
