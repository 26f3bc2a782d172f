package main

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/aircraftdata/platform/infra/config"
)

// NagSuppression is one accepted cdk-nag AwsSolutions finding, on one resource, with its reason. docs/infra.md lists
// them all (TestNagSuppressionsAreDocumented keeps it in step).
type NagSuppression struct {
	ID        string   // rule id, e.g. AwsSolutions-RDS3
	Path      string   // construct path below the stack
	AppliesTo []string // granular findings (IAM4/IAM5/DOC5), when the rule has them
	Reason    string
	When      condition // zero value = always; else only where the resource or the finding exists
}

// condition limits a suppression to the configurations that have the finding.
type condition struct {
	label string
	holds func(config.Config) bool
}

var (
	unprotected         = condition{"stage=dev, or firstCreate", func(c config.Config) bool { return !c.Protected() }}
	ownVpc              = condition{"own VPC", func(c config.Config) bool { return c.VpcID == "" }}
	withDocumentDB      = condition{"with DocumentDB", func(c config.Config) bool { return !c.ExternalMongo() }}
	inDevWithDocumentDB = condition{"stage=dev, with DocumentDB", func(c config.Config) bool { return c.Stage == "dev" && !c.ExternalMongo() }}
	oneInstance         = condition{"one instance", func(c config.Config) bool { return !c.LoadBalanced() }}
	loadBalanced        = condition{"instances > 1", func(c config.Config) bool { return c.LoadBalanced() }}
	withPipeline        = condition{"pipeline", func(c config.Config) bool { return c.Pipeline }}
	withLiveIngestion   = condition{"pipeline, liveIngestion", func(c config.Config) bool { return c.Pipeline && c.LiveIngestion }}
	pipelineOneInstance = condition{"pipeline, one instance", func(c config.Config) bool { return c.Pipeline && !c.LoadBalanced() }}
	pipelineFleet       = condition{"pipeline, instances > 1", func(c config.Config) bool { return c.Pipeline && c.LoadBalanced() }}
)

// backfillRuns are the ARNs of the backfill state machine's executions and map runs, as cdk-nag shows them.
const backfillRuns = `regex:/^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:(execution:<BackfillStateMachine[0-9A-F]{8}\.Name>:\*|mapRun:<BackfillStateMachine[0-9A-F]{8}\.Name>\/\*)$/`

// NagSuppressions is every suppression of the stack. Anything not listed here fails `cdk synth` and the tests.
var NagSuppressions = []NagSuppression{
	{ID: "AwsSolutions-VPC7", Path: "Network/Vpc/Resource", When: ownVpc,
		Reason: "No VPC flow logs: one instance, and every security group rule is asserted by the tests; flow logs would cost CloudWatch ingestion for internet scan noise. Add them (REJECT only) for network forensics."},
	{ID: "AwsSolutions-S1", Path: "DataBucket/Bucket/Resource",
		Reason: "No server access logs: they need a second bucket; the data bucket is private and read-only to the service. Use CloudTrail S3 data events when an audit trail of reads is required."},
	{ID: "AwsSolutions-SMG4", Path: "Database/Instance/Secret/Resource",
		Reason: "No rotation: the rotation Lambda would need a NAT gateway or a Secrets Manager endpoint in the isolated subnets, and aircraftd reads the password at start. Rotate by redeploying with a new secret."},
	{ID: "AwsSolutions-SMG4", Path: "DocStore/Cluster/Secret/Resource", When: withDocumentDB,
		Reason: "No rotation: the rotation Lambda would need a NAT gateway or a Secrets Manager endpoint in the isolated subnets, and aircraftd reads the URI at start."},
	{ID: "AwsSolutions-SMG4", Path: "Database/AppSecret/Resource",
		Reason: "No rotation: the rotation Lambda would need a NAT gateway or a Secrets Manager endpoint in the isolated subnets; aircraftd's own user (aircraft_app) reads its password at start. Rotate by putting a new password and restarting the service after the next release sets it."},
	{ID: "AwsSolutions-SMG4", Path: "DocStore/AppSecret/Resource", When: withDocumentDB,
		Reason: "No rotation: as for the PostgreSQL user of the service, the rotation Lambda would need a NAT gateway or a Secrets Manager endpoint in the isolated subnets."},
	{ID: "AwsSolutions-SMG4", Path: "ApiToken/Resource",
		Reason: "No rotation: a static bearer token read by aircraftd at start; rotate it with `aws secretsmanager put-secret-value` and restart the service."},
	{ID: "AwsSolutions-RDS3", Path: "Database/Instance/Resource",
		Reason: "Single-AZ by design (seed: Multi-AZ: No, development); a Multi-AZ db.t3.micro doubles the database cost."},
	{ID: "AwsSolutions-RDS10", Path: "Database/Instance/Resource", When: unprotected,
		Reason: "dev stacks are disposable (`make destroy`); stage=prod turns deletion protection on, from the deploy that follows its first create (firstCreate leaves it off so that a failed first create can roll back)."},
	{ID: "AwsSolutions-RDS11", Path: "Database/Instance/Resource",
		Reason: "Default port 5432 kept: a non-default port is obscurity, not access control; only the service security group reaches it and the instance is not publicly accessible."},
	{ID: "AwsSolutions-DOC2", Path: "DocStore/Cluster/Resource", When: withDocumentDB,
		Reason: "Default port 27017 kept: only the service security group reaches it, in isolated subnets."},
	{ID: "AwsSolutions-DOC4", Path: "DocStore/Cluster/Resource", When: inDevWithDocumentDB,
		Reason: "dev keeps backupRetentionDays (default 1) of backups; stage=prod defaults to 7."},
	{ID: "AwsSolutions-DOC5", Path: "DocStore/Cluster/Resource", When: withDocumentDB,
		AppliesTo: []string{"LogExport::authenticate", "LogExport::createIndex", "LogExport::dropCollection"},
		Reason:    "No audit log export: DocumentDB audit logs need the audit_logs parameter and CloudWatch ingestion; the store holds file records that can be re-registered from the bucket."},
	{ID: "CdkNagValidationFailure", Path: "DocStore/Cluster/Resource", When: withDocumentDB,
		Reason: "AwsSolutions-DOC3 (secret rotation) cannot evaluate the dynamic reference of the generated secret; rotation is covered by the AwsSolutions-SMG4 suppression above."},
	{ID: "AwsSolutions-EC23", Path: "Service/SecurityGroup/Resource", When: oneInstance,
		Reason: "A public HTTPS API: 443 from allowedCidr, default 0.0.0.0/0; set allowedCidr to narrow it. Port 80 only with domainName, open to the internet for the ACME http-01 challenge (and a redirect). No other port is open."},
	{ID: "AwsSolutions-IAM5", Path: "Service/Role/DefaultPolicy/Resource", When: oneInstance,
		AppliesTo: []string{"Resource::<DataBucketBD860FE1.Arn>/*"},
		Reason:    "Read-only object actions (GetObject, GetObjectVersion and their attributes) on the objects of the data bucket, which are the flight data files the service ingests."},
	{ID: "AwsSolutions-IAM5", Path: "Service/Role/DefaultPolicy/Resource", When: oneInstance,
		AppliesTo: []string{`regex:/^Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>\/aircraft\/[A-Za-z0-9-]+\/\*$/`},
		Reason:    "s3:GetObject under the stack's own prefix of the CDK asset bucket (aircraft/STACKNAME/): the release binary and the RDS CA bundle. A grant per object would make every app release an IAM change that `cdk deploy` asks to approve."},
	{ID: "AwsSolutions-IAM5", Path: "Service/Role/DefaultPolicy/Resource", When: oneInstance,
		AppliesTo: []string{"Resource::*"},
		Reason:    "kms:Decrypt, for a customer-managed key that is not known at synth (of the CDK asset bucket or of an external MongoDB secret): limited by kms:ViaService to S3 and Secrets Manager in the stack's region and by the encryption context to the asset bucket and the stack's secrets. And Session Manager's five actions (ssm:UpdateInstanceInformation, ssmmessages:Create/OpenControlChannel, Create/OpenDataChannel), which take no resource: instead of AmazonSSMManagedInstanceCore, whose ssm:GetParameter(s) reach every parameter of the account. And cloudwatch:PutMetricData (no resource either), limited by the cloudwatch:namespace condition to the stack's namespace: the agent's free-space metric of the root volume."},
	{ID: "AwsSolutions-SNS2", Path: "Alarms/Topic/Resource",
		Reason: "Alarm notifications carry alarm names and states, no data. CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key, and a customer-managed key costs $1/month for this one topic."},
	{ID: "AwsSolutions-EC28", Path: "Service/Instance/Resource", When: oneInstance,
		Reason: "Basic (5-minute) monitoring is enough for one t2.micro; detailed monitoring costs extra per metric."},
	{ID: "AwsSolutions-EC29", Path: "Service/Instance/Resource", When: oneInstance,
		Reason: "CloudFormation owns the instance's lifecycle; termination protection would block `cdk destroy` and replacements. Data lives in RDS, DocumentDB and S3, not on the instance."},
	// The ingestion pipeline (pipeline, default on).
	{ID: "AwsSolutions-IAM5", Path: "Worker/Role/DefaultPolicy/Resource", When: withPipeline,
		AppliesTo: []string{"Resource::*"},
		Reason:    "The network interfaces of a Lambda function in a VPC (what AWSLambdaVPCAccessExecutionRole grants, without its logs:* on every group): EC2's describe actions take no resource, and Lambda creates and deletes the interfaces before their ids exist."},
	{ID: "AwsSolutions-IAM5", Path: "Worker/Role/DefaultPolicy/Resource", When: withPipeline,
		AppliesTo: []string{"Resource::<DataBucketBD860FE1.Arn>/*"},
		Reason:    "s3:GetObject (only) on the objects of the data bucket: the flight data files the worker ingests, any key a backfill lists or a notification names."},
	{ID: "AwsSolutions-IAM5", Path: "Backfill/StateMachine/Role/DefaultPolicy/Resource", When: withPipeline,
		AppliesTo: []string{"Resource::*"},
		Reason:    "Step Functions' delivery of its execution log to CloudWatch Logs (logs:CreateLogDelivery, PutResourcePolicy and the other log delivery actions): the log delivery actions take no resource (AWS's Step Functions logging guide)."},
	{ID: "AwsSolutions-IAM5", Path: "Backfill/StateMachine/Role/DefaultPolicy/Resource", When: withPipeline,
		AppliesTo: []string{`regex:/^Resource::arn:<AWS::Partition>:s3:::<BackfillResults[0-9A-F]{8}>\/\*$/`},
		Reason:    "The Distributed Map's ResultWriter writes each map run's result files (their names are made by Step Functions) into the results bucket, which holds nothing else."},
	{ID: "AwsSolutions-IAM5", Path: "Backfill/StateMachine/Role/DefaultPolicy/Resource", When: withPipeline,
		AppliesTo: []string{`regex:/^Resource::<WorkerFunction[0-9A-F]{8}\.Arn>:\*$/`},
		Reason:    "lambda:InvokeFunction on the worker's versions and aliases (the CDK's Lambda task grants the function and its qualifiers): the worker only."},
	{ID: "AwsSolutions-IAM5", Path: "Backfill/StateMachine/DistributedMapPolicy/Resource", When: withPipeline,
		AppliesTo: []string{`regex:/^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:\{"Fn::Select":\[6,\{"Fn::Split":\[":",\{"Ref":"BackfillStateMachine[0-9A-F]{8}"\}\]\}\]\}(\/Batches)?:\*$/`},
		Reason:    "What a Distributed Map needs of its own child executions (Step Functions' Distributed Map IAM guide): DescribeExecution and StopExecution on the executions of this state machine, RedriveExecution on its map runs' (execution:NAME/Batches:*), whose names Step Functions makes."},
	{ID: "AwsSolutions-IAM5", Path: "Service/Role/DefaultPolicy/Resource", When: pipelineOneInstance,
		AppliesTo: []string{backfillRuns},
		Reason:    "aircraftd follows and stops the backfills it started: DescribeExecution, StopExecution and ListMapRuns on the executions of the backfill state machine, DescribeMapRun on their map runs, which Step Functions names."},
	{ID: "AwsSolutions-IAM5", Path: "Fleet/Role/DefaultPolicy/Resource", When: pipelineFleet,
		AppliesTo: []string{backfillRuns},
		Reason:    "aircraftd follows and stops the backfills it started: DescribeExecution, StopExecution and ListMapRuns on the executions of the backfill state machine, DescribeMapRun on their map runs, which Step Functions names."},
	{ID: "AwsSolutions-S1", Path: "Backfill/Results/Resource", When: withPipeline,
		Reason: "No server access logs: the results bucket holds the map runs' result files, written by the state machine only, expiring after 30 days; logging them would need a further bucket."},
	{ID: "AwsSolutions-SF2", Path: "Backfill/StateMachine/Resource", When: withPipeline,
		Reason: "No X-Ray: a backfill's steps are a listing and Lambda invocations whose durations the map run, the execution log (level ALL) and the worker's log already give; tracing every child execution costs per trace."},
	{ID: "AwsSolutions-IAM4", Path: "BucketNotificationsHandler050a0587b7544547bf325f094a3db834/Role/Resource", When: withLiveIngestion,
		AppliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
		Reason:    "The CDK's handler that writes the data bucket's notification configuration at deploy time (live ingestion): it only logs with this policy."},
	// The load-balanced mode (instances > 1).
	{ID: "AwsSolutions-EC23", Path: "LoadBalancer/SecurityGroup/Resource", When: loadBalanced,
		Reason: "A public HTTPS API behind the load balancer: 443 and 80 (redirect only) from allowedCidr, default 0.0.0.0/0; set allowedCidr to narrow it. The instances admit the load balancer only."},
	{ID: "AwsSolutions-IAM5", Path: "Fleet/Role/DefaultPolicy/Resource", When: loadBalanced,
		AppliesTo: []string{"Resource::<DataBucketBD860FE1.Arn>/*"},
		Reason:    "Read-only object actions (GetObject, GetObjectVersion and their attributes) on the objects of the data bucket, which are the flight data files the fleet ingests."},
	{ID: "AwsSolutions-IAM5", Path: "Fleet/Role/DefaultPolicy/Resource", When: loadBalanced,
		AppliesTo: []string{`regex:/^Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>\/aircraft\/[A-Za-z0-9-]+\/\*$/`},
		Reason:    "s3:GetObject under the stack's own prefix of the CDK asset bucket (aircraft/STACKNAME/): the fleet's release binary and the RDS CA bundle, so that a release is no IAM change."},
	{ID: "AwsSolutions-IAM5", Path: "Fleet/Role/DefaultPolicy/Resource", When: loadBalanced,
		AppliesTo: []string{"Resource::*"},
		Reason:    "kms:Decrypt, for a customer-managed key that is not known at synth (of the CDK asset bucket or of an external MongoDB secret): limited by kms:ViaService to S3 and Secrets Manager in the stack's region and by the encryption context to the asset bucket and the stack's secrets. And Session Manager's five actions (ssm:UpdateInstanceInformation, ssmmessages:Create/OpenControlChannel, Create/OpenDataChannel), which take no resource: instead of AmazonSSMManagedInstanceCore, whose ssm:GetParameter(s) reach every parameter of the account. And elasticloadbalancing:DescribeTargetHealth (no resource either), for the release gate that waits for the load balancer to report the instance healthy."},
	{ID: "AwsSolutions-AS3", Path: "Fleet/Group/ASG", When: loadBalanced,
		Reason: "No SNS notifications of scaling events: the group only changes size in a rolling release, whose progress and failures CloudFormation reports in the stack events, and each instance's boot and release gate log to the service log group."},
	{ID: "AwsSolutions-S1", Path: "LoadBalancer/AccessLogs/Resource", When: loadBalanced,
		Reason: "The bucket of the load balancer's access logs is itself a log destination; logging its reads would need a further bucket. It is private, TLS-only, and only Elastic Load Balancing may write it."},
}

// AddNagSuppressions applies NagSuppressions to the stack, and acknowledges the CDK validation findings that are known
// to be wrong for this stack.
func AddNagSuppressions(stack awscdk.Stack, cfg config.Config) {
	for _, s := range NagSuppressions {
		if s.When.holds != nil && !s.When.holds(cfg) {
			continue
		}
		sup := &cdknag.NagPackSuppression{Id: jsii.String(s.ID), Reason: jsii.String(s.Reason)}
		if len(s.AppliesTo) > 0 {
			applies := make([]any, len(s.AppliesTo))
			for i, a := range s.AppliesTo {
				applies[i] = a
				if re, ok := strings.CutPrefix(a, "regex:"); ok {
					applies[i] = &cdknag.RegexAppliesTo{Regex: jsii.String(re)}
				}
			}
			sup.AppliesTo = &applies
		}
		cdknag.NagSuppressions_AddResourceSuppressionsByPath(stack, jsii.String("/"+*stack.Node().Path()+"/"+s.Path),
			&[]*cdknag.NagPackSuppression{sup}, jsii.Bool(false))
	}

	// The CDK's synth-time CloudFormation validation does not know the resolve:ssm: form of ImageId, which EC2 resolves
	// when the instance launches (see Service).
	box, image := "Service", "Instance"
	if cfg.LoadBalanced() {
		box, image = "Fleet", "LaunchTemplate"
	}
	instance := stack.Node().FindChild(jsii.String(box)).Node().FindChild(jsii.String(image)).Node().DefaultChild()
	awscdk.Validations_Of(instance).Acknowledge(&awscdk.Acknowledgment{
		Id:     jsii.String("CloudFormation-Validate::E1152"),
		Reason: jsii.String("ImageId resolve:ssm:<public AL2023 parameter> is valid CloudFormation, resolved at launch"),
	})
}

// NagSuppressionsMarkdown is the table of suppressions in docs/infra.md.
func NagSuppressionsMarkdown() string {
	var b strings.Builder
	b.WriteString("| rule | resource | when | reason |\n|---|---|---|---|\n")
	for _, s := range NagSuppressions {
		id := s.ID
		if len(s.AppliesTo) > 0 {
			id += " (" + strings.Join(s.AppliesTo, ", ") + ")"
		}
		when := "always"
		if s.When.label != "" {
			when = s.When.label
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", strings.ReplaceAll(id, "|", "\\|"), s.Path, when, strings.ReplaceAll(s.Reason, "|", "\\|"))
	}
	return b.String()
}
