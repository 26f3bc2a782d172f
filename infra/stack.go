package main

import (
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/config"
	"github.com/aircraftdata/platform/infra/datastores"
	"github.com/aircraftdata/platform/infra/host"
	"github.com/aircraftdata/platform/infra/network"
	"github.com/aircraftdata/platform/infra/observability"
	"github.com/aircraftdata/platform/infra/pipeline"
	"github.com/aircraftdata/platform/infra/serviceenv"
	"github.com/aircraftdata/platform/infra/single"
)

// AircraftStackProps configures the stack.
type AircraftStackProps struct {
	awscdk.StackProps
	Config     config.Config
	BinaryPath string // aircraftd for the instance's architecture (see ServiceBinary)
	WorkerCode string // the ingest worker's code folder (pipeline.WorkerCode); "" without the pipeline
}

// NewAircraftStack is the architecture of the seed, box by box:
//
//	client ──HTTPS 443 (80: ACME, redirect)──▶ EC2 (public subnet, Elastic IP) ──5432──▶ RDS PostgreSQL (isolated)
//	                                             │ └──────────27017──────────▶ DocumentDB (isolated)
//	                                             └──read-only, S3 gateway endpoint──▶ S3 bucket aircraft-data
//	aircraftd ──StartExecution──▶ Step Functions (Distributed Map over the listing) ──invoke──▶ Lambda ingest worker
//	S3 new objects ──▶ SQS (dead-letter queue) ──batches──▶ Lambda ingest worker (isolated) ──5432, IAM auth──▶ RDS
//
// It is environment-agnostic: no account, region or lookups, so `cdk synth` needs no AWS credentials.
func NewAircraftStack(scope constructs.Construct, id string, props *AircraftStackProps) awscdk.Stack {
	cfg := props.Config
	sprops := props.StackProps
	sprops.Description = jsii.String("Aircraft data platform: aircraftd on EC2, RDS PostgreSQL, DocumentDB, S3 (infra/ in the platform repository)")
	// prod cannot be deleted by a stray `cdk destroy`: termination protection must be turned off by hand first. Not on
	// a first create (firstCreate): a failed one must roll back and be retried without a hand's help.
	sprops.TerminationProtection = jsii.Bool(cfg.Protected())
	// The stack's assets (binary, CA bundle) live under a prefix of their own in the CDK asset bucket, so that the
	// instance's read grant names the prefix, not each release's object (see Release).
	sprops.Synthesizer = awscdk.NewDefaultStackSynthesizer(&awscdk.DefaultStackSynthesizerProps{
		BucketPrefix: jsii.String(host.AssetPrefix(id)),
	})
	stack := awscdk.NewStack(scope, &id, &sprops)
	awscdk.Tags_Of(stack).Add(jsii.String("project"), jsii.String("aircraft-data-platform"), nil)
	awscdk.Tags_Of(stack).Add(jsii.String("stage"), jsii.String(cfg.Stage), nil)
	// The region must be one the RDS CA bundle and the instance type serve: refused at change-set time (regions.go).
	addRegionRules(stack, cfg.InstanceType)

	// VPC 10.0.0.0/16: public and isolated subnets in two AZs, no NAT gateway, S3 gateway endpoint.
	vpc := network.NewNetwork(stack, "Network", cfg.ExistingVpc())

	// S3 bucket aircraft-data: private, versioned, TLS only; the flight data files.
	data := datastores.NewDataBucket(stack, "DataBucket", &datastores.DataBucketProps{
		BucketName: cfg.BucketName, NoncurrentVersionDays: cfg.NoncurrentVersionDays, Stage: cfg.Stage, Protected: cfg.Protected(),
	})

	// RDS PostgreSQL in the isolated subnets, not publicly accessible.
	database := datastores.NewDatabase(stack, "Database", &datastores.DatabaseProps{
		Vpc: vpc.Vpc, StackName: cfg.StackName, Stage: cfg.Stage, BackupRetentionDays: cfg.BackupRetentionDays,
		LogRetentionDays: cfg.LogRetentionDays, Protected: cfg.Protected(),
	})

	// Mongo-wire store of the file records: DocumentDB in the isolated subnets, or an external MongoDB.
	docstore := datastores.NewDocStore(stack, "DocStore", &datastores.DocStoreProps{
		Vpc: vpc.Vpc, Stage: cfg.Stage, BackupRetentionDays: cfg.BackupRetentionDays, ExternalSecretArn: cfg.MongoURISecretArn,
		Protected: cfg.Protected(),
	})

	// The ingestion pipeline: the worker Lambda function in the isolated subnets, the backfill state machine, the queue
	// of the bucket's new objects. Both modes' service starts backfills on it.
	var pipe *pipeline.Pipeline
	if cfg.Pipeline {
		pipe = pipeline.New(stack, &pipeline.Props{
			StackName: cfg.StackName, Vpc: vpc.Vpc, CodeDir: props.WorkerCode, Database: database.Instance, Bucket: data.Bucket,
			LiveIngestion: cfg.LiveIngestion, Workers: cfg.WorkerConcurrency, MemoryMB: cfg.WorkerMemoryMB,
			TimeoutSeconds: cfg.WorkerTimeoutSeconds, LiveBatchSize: cfg.LiveBatchSize,
			LiveBatchWindowSeconds: cfg.LiveBatchWindowSeconds, LogRetentionDays: cfg.LogRetentionDays, Stage: cfg.Stage,
			Protected: cfg.Protected(),
		})
	}

	if cfg.LoadBalanced() {
		// instances > 1: the same network and data stores, the service behind a load balancer (loadbalanced.go).
		addLoadBalancedService(stack, cfg, props.BinaryPath, vpc, data, database, docstore, pipe)
	} else {
		addSingleInstanceService(stack, cfg, props.BinaryPath, vpc, data, database, docstore, pipe)
	}
	AddNagSuppressions(stack, cfg)
	return stack
}

// addSingleInstanceService is the rest of the stack with one instance, after the network and the data stores that both
// modes share: the instance, its HTTPS, its release, the alarms and the outputs.
func addSingleInstanceService(stack awscdk.Stack, cfg config.Config, binaryPath string, vpc *network.Network, data *datastores.DataBucket, database *datastores.Database, docstore *datastores.DocStore, pipe *pipeline.Pipeline) {
	// EC2 in a public subnet: 80/443 in from allowedCidr, Elastic IP, Session Manager instead of SSH.
	service := single.NewService(stack, "Service", &single.ServiceProps{
		Vpc: vpc.Vpc, InstanceType: cfg.InstanceType, AllowedCidr: cfg.AllowedCidr, ACME: cfg.TLSMode() == "acme", DataBucket: data.Bucket,
		LogGroupName: "/aircraft/" + cfg.StackName + "/service", LogRetentionDays: cfg.LogRetentionDays, Stage: cfg.Stage,
		ElasticIPAllocationID: cfg.ElasticIPAllocationID,
	})

	// First create: the instance boots once every data store is available (RDS instance, DocumentDB instances), so that
	// aircraftd's first start finds them and the release gate measures the service, not a race.
	service.Instance.Node().AddDependency(database.Instance)
	if docstore.Cluster != nil {
		service.Instance.Node().AddDependency(docstore.Cluster)
	}

	// EC2 ──5432──▶ RDS, EC2 ──27017──▶ DocumentDB: security group to security group, nothing else.
	service.AllowTo(database.Instance, 5432, "PostgreSQL")
	if docstore.Cluster != nil {
		service.AllowTo(docstore.Cluster, 27017, "DocumentDB")
	} else {
		service.AllowToNetwork(cfg.MongoCidr, 27017, "external MongoDB (mongoCidr)")
	}

	// The API token of every POST, generated; the service reads it and its database secrets, nothing else.
	apiToken := newAPIToken(stack)
	secretArns := grantReadSecrets(service.Role, database, docstore, apiToken)
	if pipe != nil {
		pipe.GrantBackfills(service.Role)
	}

	// HTTPS: ACME for domainName, else a self-signed certificate published to SSM.
	https := single.NewHTTPS(stack, "Https", &single.HTTPSProps{
		Service: service, StackName: cfg.StackName, DomainName: cfg.DomainName, HostedZoneID: cfg.HostedZoneID,
	})

	// The app: built from app/, shipped as an S3 asset, installed and updated in place as a systemd service.
	release := single.NewRelease(stack, "Release", &single.ReleaseProps{
		Service:       service,
		BinaryPath:    binaryPath,
		Environment:   withTLS(sharedEnvironment(data, database, docstore, apiToken, pipe), cfg),
		CertParameter: https.CertificateParameter,
		SecretArns:    secretArns,
	})

	// CloudWatch alarms to one SNS topic (e-mail from alarmEmail).
	alarms := observability.NewAlarms(stack, "Alarms", &observability.AlarmsProps{
		Email: cfg.AlarmEmail, InstanceID: service.Instance.InstanceId(), Burstable: strings.HasPrefix(cfg.InstanceType, "t"),
		ServiceLogs: service.LogGroup, Database: database, DocStore: docstore,
	})
	alarmTopic := alarms.Topic
	allAlarms := append(alarms.IAlarms(), pipelineAlarms(stack, pipe, alarmTopic, database)...)

	// The dashboard, and alarms on aircraftd's own metrics (observability/dashboard.go, servicealarms.go).
	observability.NewServiceMonitoring(stack, "Monitoring", &observability.ServiceMonitoringProps{
		Namespace: observability.MetricsNamespace(stack), Topic: alarmTopic, Alarms: allAlarms, DatabaseID: database.Instance.InstanceIdentifier(),
		InstanceID: service.Instance.InstanceId(), Burstable: strings.HasPrefix(cfg.InstanceType, "t"), ServiceLogs: service.LogGroup,
	})

	output(stack, "ApiUrl", https.URL, "Base URL of the API")
	dataOutputs(stack, data, database, docstore, apiToken)
	pipelineOutputs(stack, pipe)
	output(stack, "InstanceId", service.Instance.InstanceId(), "Service instance (aws ssm start-session --target <id>)")
	if service.ElasticIP != nil {
		output(stack, "ElasticIp", service.ElasticIP, "Public address of the service")
	} else {
		output(stack, "ElasticIpAllocationId", jsii.String(cfg.ElasticIPAllocationID), "The pre-allocated Elastic IP of the service")
	}
	output(stack, "LogGroupName", service.LogGroup.LogGroupName(), "Service and deploy logs")
	output(stack, "ReleaseId", jsii.String(release.ID), "Release id of the deployed binary and configuration")
	output(stack, "AlarmTopicArn", alarmTopic.TopicArn(), "SNS topic of the CloudWatch alarms (subscribe more endpoints here)")
	if https.CertificateParameter != "" {
		output(stack, "CertificateParameterName", jsii.String(https.CertificateParameter), "SSM parameter with the self-signed certificate (PEM), written by the instance")
	}

}

// newAPIToken is the generated bearer token of every POST.
func newAPIToken(stack awscdk.Stack) awssecretsmanager.Secret {
	return awssecretsmanager.NewSecret(stack, jsii.String("ApiToken"), &awssecretsmanager.SecretProps{
		Description: jsii.String("Bearer token of the aircraftd API (every POST)"),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength: jsii.Number(48), ExcludePunctuation: jsii.Bool(true),
		},
	})
}

// grantReadSecrets lets role read the service's secrets (the database's, the document store's, the API token) and
// returns their ARNs. Both modes use it.
func grantReadSecrets(role awsiam.IRole, database *datastores.Database, docstore *datastores.DocStore, apiToken awssecretsmanager.ISecret) []string {
	var arns []string
	secrets := []awssecretsmanager.ISecret{database.Instance.Secret(), database.AppSecret, docstore.Secret, apiToken}
	if docstore.AppSecret != nil {
		secrets = append(secrets, docstore.AppSecret)
	}
	for _, secret := range secrets {
		secret.GrantRead(role, nil)
		arns = append(arns, *secret.SecretArn())
	}
	return arns
}

// sharedEnvironment is the part of the instance environment both modes share: the region, the data bucket, and the
// secrets of the data stores and of the API token.
func sharedEnvironment(data *datastores.DataBucket, database *datastores.Database, docstore *datastores.DocStore, apiToken awssecretsmanager.ISecret, pipe *pipeline.Pipeline) serviceenv.Settings {
	var backfills *serviceenv.Backfills
	if pipe != nil {
		backfills = &serviceenv.Backfills{
			StateMachineArn: *pipe.Backfill.StateMachine.StateMachineArn(), Concurrency: pipe.BackfillConcurrency,
			Retries: pipeline.BatchRetries, RetrySeconds: pipeline.RetrySeconds, WorkerUser: pipeline.WorkerDBUser,
		}
	}
	return serviceenv.Settings{
		Backfills:         backfills,
		Region:            *awscdk.Aws_REGION(),
		Bucket:            *data.Bucket.BucketName(),
		DBSecretArn:       *database.Instance.Secret().SecretArn(),
		MongoSecretArn:    *docstore.Secret.SecretArn(),
		DocumentDB:        docstore.Cluster != nil,
		APITokenSecretArn: *apiToken.SecretArn(),
		DBAppSecretArn:    *database.AppSecret.SecretArn(),
		MongoAppSecretArn: mongoAppSecretArn(docstore),
	}
}

// pipelineAlarms are the pipeline's alarms on topic (none without it).
func pipelineAlarms(stack awscdk.Stack, pipe *pipeline.Pipeline, topic awssns.ITopic, database *datastores.Database) []awscloudwatch.IAlarm {
	if pipe == nil {
		return nil
	}
	var out []awscloudwatch.IAlarm
	for _, a := range pipe.AddAlarms(stack, topic, database.Instance.InstanceIdentifier(), pipeline.MaxConnections(datastores.MemoryBytes)) {
		out = append(out, a)
	}
	return out
}

// pipelineOutputs are the outputs of the ingestion pipeline, the same in both modes.
func pipelineOutputs(stack awscdk.Stack, pipe *pipeline.Pipeline) {
	if pipe == nil {
		return
	}
	output(stack, "BackfillStateMachineArn", pipe.Backfill.StateMachine.StateMachineArn(), "State machine of the backfills (aircraftd's BACKFILL_STATE_MACHINE_ARN)")
	output(stack, "BackfillResultsBucketName", pipe.Backfill.Results.BucketName(), "Result files of the backfills' map runs (kept 30 days)")
	output(stack, "WorkerFunctionName", pipe.Worker.Function.FunctionName(), "Ingest worker Lambda function")
	output(stack, "WorkerLogGroupName", pipe.Worker.LogGroup.LogGroupName(), "Logs of the ingest worker")
	if pipe.Live != nil {
		output(stack, "LiveQueueUrl", pipe.Live.Queue.QueueUrl(), "Queue of the bucket's new objects (live ingestion)")
		output(stack, "LiveDeadLetterQueueUrl", pipe.Live.DeadLetterQueue.QueueUrl(), "Dead-letter queue of live ingestion")
	}
}

// mongoAppSecretArn is the ARN of DocumentDB's service user secret; "" with an external MongoDB.
func mongoAppSecretArn(docstore *datastores.DocStore) string {
	if docstore.AppSecret == nil {
		return ""
	}
	return *docstore.AppSecret.SecretArn()
}

// withTLS adds the single instance's own TLS settings (the fleet's TLS ends at the load balancer).
func withTLS(env serviceenv.Settings, cfg config.Config) serviceenv.Settings {
	env.TLSMode, env.Domain, env.AcmeEmail = cfg.TLSMode(), cfg.DomainName, cfg.AcmeEmail
	return env
}

// dataOutputs are the outputs of the data stores and secrets, the same in both modes.
func dataOutputs(stack awscdk.Stack, data *datastores.DataBucket, database *datastores.Database, docstore *datastores.DocStore, apiToken awssecretsmanager.Secret) {
	output(stack, "BucketName", data.Bucket.BucketName(), "Data bucket (flight data files)")
	output(stack, "DatabaseEndpoint", database.Instance.DbInstanceEndpointAddress(), "RDS PostgreSQL endpoint (isolated subnets)")
	output(stack, "DatabaseSecretArn", database.Instance.Secret().SecretArn(), "Secret of the database credentials")
	output(stack, "MongoSecretArn", docstore.Secret.SecretArn(), "Secret of the Mongo-wire store (DocumentDB JSON or external URI)")
	output(stack, "DatabaseAppSecretArn", database.AppSecret.SecretArn(), "Secret of aircraftd's own PostgreSQL user (aircraft_app)")
	if docstore.AppSecret != nil {
		output(stack, "MongoAppSecretArn", docstore.AppSecret.SecretArn(), "Secret of aircraftd's own DocumentDB user (aircraft_app)")
	}
	output(stack, "ApiTokenSecretArn", apiToken.SecretArn(), "Secret of the API bearer token")
}

func output(stack awscdk.Stack, id string, value *string, description string) {
	awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(description)})
}
