package pipeline

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3notifications"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

const (
	// MaxReceiveCount is how many times the queue hands a message to the worker before it moves it to the dead-letter
	// queue. The worker lists a message for redelivery only when a dependency failed (a bad file is quarantined and its
	// message done) or when it is no notification of the bucket: 5 deliveries, a visibility timeout (30 minutes at the
	// default function timeout) apart, ride out a dependency outage of about two hours.
	MaxReceiveCount = 5
	// visibilityTimeouts is the queue's visibility timeout in function timeouts: AWS asks for at least 6, so that a
	// batch's retries by the event source never overlap a delivery still being ingested.
	visibilityTimeouts = 6
	// dlqRetentionDays is how long a message waits in the dead-letter queue for a look and a redrive (SQS's most).
	dlqRetentionDays = 14
)

// LiveProps configures live ingestion.
type LiveProps struct {
	Worker             *Worker
	Bucket             awss3.Bucket // the stack's own: its notification configuration is the stack's to write
	TimeoutSeconds     int          // the worker's
	BatchSize          int
	BatchWindowSeconds int
}

// Live is the box "new objects queue": the data bucket notifies every object created to an SQS queue (encrypted, TLS
// only), which invokes the worker with batches of them (at most LiveConcurrency at once, partial batch responses); a
// message delivered MaxReceiveCount times goes to the dead-letter queue, whose depth is alarmed.
type Live struct {
	constructs.Construct
	Queue           awssqs.Queue
	DeadLetterQueue awssqs.Queue
}

// NewLive makes the queues, the bucket's notification and the worker's event source.
func NewLive(scope constructs.Construct, id string, props *LiveProps) *Live {
	this := constructs.NewConstruct(scope, &id)

	dlq := awssqs.NewQueue(this, jsii.String("DeadLetterQueue"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(dlqRetentionDays)),
	})
	queue := awssqs.NewQueue(this, jsii.String("Queue"), &awssqs.QueueProps{
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(float64(visibilityTimeouts * props.TimeoutSeconds))),
		DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: dlq, MaxReceiveCount: jsii.Number(MaxReceiveCount)},
	})

	// Every object created (put, copy, multipart upload): the worker skips what the ledger has.
	props.Bucket.AddEventNotification(awss3.EventType_OBJECT_CREATED, awss3notifications.NewSqsDestination(queue))

	props.Worker.Function.AddEventSource(awslambdaeventsources.NewSqsEventSource(queue, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(float64(props.BatchSize)),
		MaxBatchingWindow:       awscdk.Duration_Seconds(jsii.Number(float64(props.BatchWindowSeconds))),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(LiveConcurrency),
	}))
	return &Live{Construct: this, Queue: queue, DeadLetterQueue: dlq}
}
