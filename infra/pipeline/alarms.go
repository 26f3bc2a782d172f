package pipeline

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/observability"
)

// connectionsAlarmPercent is the share of max_connections at which the database's connections alarm.
const connectionsAlarmPercent = 90

// AddAlarms adds the pipeline's alarms to scope, each notifying topic when it fires and when it recovers: backfill
// executions that failed, timed out or were aborted; the dead-letter queue holding a message; the worker failing for 15
// minutes or being throttled; the database's connections near max_connections (maxConnections).
func (p *Pipeline) AddAlarms(scope constructs.Construct, topic awssns.ITopic, databaseID *string, maxConnections int) []awscloudwatch.Alarm {
	this := constructs.NewConstruct(scope, jsii.String("PipelineAlarms"))
	var alarms []awscloudwatch.Alarm
	add := func(id, what string, m awscloudwatch.IMetric, threshold float64, periods int) {
		alarms = append(alarms, observability.NewAlarm(this, id, topic, observability.AtLeast(what, m, threshold, periods)))
	}
	sum := &awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}
	maximum := &awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}

	machine := p.Backfill.StateMachine
	add("BackfillFailed", "A backfill execution failed: a map run failed more than its tolerated share of batches, or could not list or write its results. GET /api/v1/backfills/{id} lists the failed batches; the map run's FAILED_*.json in the results bucket has their keys and errors.",
		machine.MetricFailed(sum), 1, 1)
	add("BackfillTimedOut", "A backfill execution timed out.", machine.MetricTimedOut(sum), 1, 1)
	add("BackfillAborted", "A backfill execution was aborted: DELETE /api/v1/backfills/{id} stops one so; if nobody did, look at the execution's events.",
		machine.MetricAborted(sum), 1, 1)
	if p.Live != nil {
		add("LiveDeadLetters", fmt.Sprintf("A message of the new-objects queue went to its dead-letter queue (%d deliveries failed: a dependency down for long, or a message that is no S3 notification of the bucket). Look at it, then redrive it to the queue.", MaxReceiveCount),
			p.Live.DeadLetterQueue.MetricApproximateNumberOfMessagesVisible(maximum), 1, 1)
	}
	fn := p.Worker.Function
	add("WorkerErrors", "The ingest worker failed invocations in each of 15 minutes (S3 or PostgreSQL unavailable: the map and the queue retry them; see its log group).",
		fn.MetricErrors(sum), 1, 3)
	add("WorkerThrottles", "The ingest worker was throttled: more invocations than its reserved concurrency (workerConcurrency), or the account's concurrency is used up.",
		fn.MetricThrottles(sum), 1, 1)
	threshold := maxConnections * connectionsAlarmPercent / 100
	add("DatabaseConnections", fmt.Sprintf("RDS PostgreSQL has %d or more connections (%d%% of the %d it allows): lower workerConcurrency or grow the instance class.", threshold, connectionsAlarmPercent, maxConnections),
		awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/RDS"), MetricName: jsii.String("DatabaseConnections"), Statistic: jsii.String("Maximum"),
			Period: awscdk.Duration_Minutes(jsii.Number(5)), DimensionsMap: &map[string]*string{"DBInstanceIdentifier": databaseID},
		}), float64(threshold), 1)
	return alarms
}
