package pipeline

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctionstasks"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/removal"
)

// The retries of a batch whose dependency failed (ASL's MaxAttempts cannot come from the input, so the input's
// "retries" is not read: aircraftd's BACKFILL_RETRIES and BACKFILL_RETRY_SECONDS are set to these, so that the API
// reports what the state machine does). A batch is tried BatchRetries+1 times, RetrySeconds, then twice that, … apart
// (with full jitter, so that batches failed together do not come back together).
const (
	BatchRetries = 3
	RetrySeconds = 2
)

// RetriedErrors are the errors of an invocation that the map tries again: Lambda's own (throttled, the service failing)
// and the worker's dependency errors (ingest.UnavailableError in app/internal/ingest: S3 or PostgreSQL failing;
// aws-lambda-go names an error by its Go type), and the function timing out (an S3 stall is cut at S3_STALL_SECONDS,
// well within the timeout). A bad file is no error: the worker quarantines it.
var RetriedErrors = []string{
	"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
	"UnavailableError", "Sandbox.Timedout",
}

// ResultsDays is how long the result files of a map run are kept (ResultWriter: each batch's input and its worker's
// answer, by status): long enough to look into the failed batches of last month's backfills.
const ResultsDays = 30

// BackfillProps configures the state machine.
type BackfillProps struct {
	Name             string // the state machine's name (its ARN is known before it exists: the roles name it)
	Worker           *Worker
	Bucket           awss3.IBucket
	LogRetentionDays int
	Stage            string
	Protected        bool // prod after its first create: the results bucket outlives the stack
}

// Backfill is the box "backfill state machine": a backfill is an execution, started by aircraftd
// (BACKFILL_STATE_MACHINE_ARN) with the input
//
//	{"backfill": id, "bucket", "prefixes": [...], "batch_size", "max_concurrency", "tolerated_failure_percentage", "retries"}
//
// An inline Map walks the prefixes one at a time; for each, a Distributed Map (one map run per prefix, whose counts
// aircraftd reads with ListMapRuns and DescribeMapRun) lists the data bucket under it (ItemReader over ListObjectsV2),
// cuts the keys into batches of batch_size (ItemBatcher), and invokes the worker with each, at most max_concurrency at
// once, failing the run beyond tolerated_failure_percentage. The bucket is the stack's: the input's "bucket" names it
// and is not read.
//
// Step Functions' 256 KiB limit on a state's output: the map runs' results never come back into the execution. They are
// written to a results bucket of their own (ResultWriter; not the data bucket, whose new objects are ingested), the
// Distributed Map's small answer (its map run and where the results are) is then dropped too, and the inline Map keeps
// nothing of its iterations.
type Backfill struct {
	constructs.Construct
	StateMachine sfn.StateMachine
	Results      awss3.Bucket
	LogGroup     awslogs.LogGroup
}

// NewBackfill makes the state machine, its role, its log group and the bucket of the map runs' results.
func NewBackfill(scope constructs.Construct, id string, props *BackfillProps) *Backfill {
	this := constructs.NewConstruct(scope, &id)

	results := awss3.NewBucket(this, jsii.String("Results"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Id:                                  jsii.String("expire-results"),
			Expiration:                          awscdk.Duration_Days(jsii.Number(ResultsDays)),
			AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
		}},
		// As the data bucket: prod keeps it (the lifecycle rule empties it), dev empties and deletes it.
		RemovalPolicy:     removal.RetainIf(props.Protected),
		AutoDeleteObjects: jsii.Bool(props.Stage != "prod"),
	})

	ingest := awsstepfunctionstasks.NewLambdaInvoke(this, jsii.String("Ingest"), &awsstepfunctionstasks.LambdaInvokeProps{
		StateName:      jsii.String("Ingest"),
		Comment:        jsii.String("One batch of keys: ingested exactly once by the worker, bad files quarantined"),
		LambdaFunction: props.Worker.Function,
		// The answer is the batch's counts (files ingested, skipped, failed, observations): the result files keep it.
		OutputPath:               jsii.String("$.Payload"),
		RetryOnServiceExceptions: jsii.Bool(false), // the Retry below covers them, with the worker's own errors
	})
	ingest.AddRetry(&sfn.RetryProps{
		Errors:         jsii.Strings(RetriedErrors...),
		Interval:       awscdk.Duration_Seconds(jsii.Number(RetrySeconds)),
		BackoffRate:    jsii.Number(2),
		MaxAttempts:    jsii.Number(BatchRetries),
		JitterStrategy: sfn.JitterType_FULL,
	})

	batches := sfn.NewDistributedMap(this, jsii.String("Batches"), &sfn.DistributedMapProps{
		StateName: jsii.String("Batches"),
		Comment:   jsii.String("The keys under one prefix, in batches: one map run"),
		Label:     jsii.String("Batches"),
		ItemReader: sfn.NewS3ObjectsItemReader(&sfn.S3ObjectsItemReaderProps{
			Bucket: props.Bucket, Prefix: sfn.JsonPath_StringAt(jsii.String("$.prefix")),
		}),
		ItemBatcher: sfn.NewItemBatcher(&sfn.ItemBatcherProps{
			MaxItemsPerBatchPath: jsii.String("$.batch_size"),
			// Every batch carries its backfill's id (the CDK renders no path here: the key says it is one).
			BatchInput: &map[string]any{"backfill.$": "$.backfill"},
		}),
		MaxConcurrencyPath:             jsii.String("$.max_concurrency"),
		ToleratedFailurePercentagePath: jsii.String("$.tolerated_failure_percentage"),
		MapExecutionType:               sfn.StateMachineType_STANDARD,
		ResultWriterV2: sfn.NewResultWriterV2(&sfn.ResultWriterV2Props{
			Bucket: results, Prefix: jsii.String("backfills"),
		}),
		OutputPath: sfn.JsonPath_DISCARD(),
	})
	batches.ItemProcessor(ingest, nil) // DISTRIBUTED, with MapExecutionType

	// One prefix at a time, so that max_concurrency is what the database sees, whatever the number of prefixes.
	prefixes := sfn.NewMap(this, jsii.String("Prefixes"), &sfn.MapProps{
		StateName:      jsii.String("Prefixes"),
		Comment:        jsii.String("The backfill's prefixes (one per day of a date range), one after the other"),
		ItemsPath:      jsii.String("$.prefixes"),
		MaxConcurrency: jsii.Number(1),
		ItemSelector: &map[string]any{
			"prefix":                       sfn.JsonPath_StringAt(jsii.String("$$.Map.Item.Value")),
			"backfill":                     sfn.JsonPath_StringAt(jsii.String("$.backfill")),
			"batch_size":                   sfn.JsonPath_NumberAt(jsii.String("$.batch_size")),
			"max_concurrency":              sfn.JsonPath_NumberAt(jsii.String("$.max_concurrency")),
			"tolerated_failure_percentage": sfn.JsonPath_NumberAt(jsii.String("$.tolerated_failure_percentage")),
		},
		ResultPath: sfn.JsonPath_DISCARD(),
	})
	prefixes.ItemProcessor(batches, nil)

	logs := awslogs.NewLogGroup(this, jsii.String("Logs"), &awslogs.LogGroupProps{
		// Step Functions' log delivery wants the vended-logs prefix (its resource policy stays small).
		LogGroupName:  jsii.String("/aws/vendedlogs/states/" + props.Name),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	logs.Node().DefaultChild().(awslogs.CfnLogGroup).SetRetentionInDays(jsii.Number(float64(props.LogRetentionDays)))

	machine := sfn.NewStateMachine(this, jsii.String("StateMachine"), &sfn.StateMachineProps{
		StateMachineName: jsii.String(props.Name),
		Comment:          jsii.String("Backfill: the data bucket's keys under each prefix, in batches, through the ingest worker"),
		DefinitionBody:   sfn.DefinitionBody_FromChainable(prefixes),
		StateMachineType: sfn.StateMachineType_STANDARD,
		// Every event, without the execution data (keys and counts are in the result files and the worker's logs).
		Logs:           &sfn.LogOptions{Destination: logs, Level: sfn.LogLevel_ALL, IncludeExecutionData: jsii.Bool(false)},
		TracingEnabled: jsii.Bool(false),
	})
	return &Backfill{Construct: this, StateMachine: machine, Results: results, LogGroup: logs}
}

// GrantRun lets grantee (aircraftd's role) start, read and stop the backfills, and read their map runs: on this state
// machine, its executions and their map runs only.
func (b *Backfill) GrantRun(grantee awsiam.IGrantable) {
	stack := awscdk.Stack_Of(b.StateMachine)
	name := b.StateMachine.StateMachineName()
	grantee.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("states:StartExecution"),
		Resources: jsii.Strings(*b.StateMachine.StateMachineArn()),
	}))
	// ListMapRuns is authorized on the execution; DescribeMapRun on the map run (stateMachine/label:id).
	grantee.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("states:DescribeExecution", "states:StopExecution", "states:ListMapRuns"),
		Resources: jsii.Strings(*stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("states"), Resource: jsii.String("execution"),
			ResourceName: jsii.String(*name + ":*"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME})),
	}))
	grantee.GrantPrincipal().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("states:DescribeMapRun"),
		Resources: jsii.Strings(*stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("states"), Resource: jsii.String("mapRun"),
			ResourceName: jsii.String(*name + "/*"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME})),
	}))
}
