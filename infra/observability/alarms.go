// Package observability is what tells someone that something is wrong: the stack's CloudWatch alarms to one SNS topic,
// the stack's metric namespace, and the disk metrics the instances' agent reports into it.
package observability

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	elb "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/datastores"
)

// AlarmsProps names what the alarms watch: the single instance (InstanceID), or the load balancer and its targets
// (instances > 1).
type AlarmsProps struct {
	Email        string  // subscribed to the topic when set (the address confirms by mail)
	InstanceID   *string // the single instance: its status, credits and root volume
	Burstable    bool    // a T instance: it has a CPU credit balance
	LoadBalancer elb.ApplicationLoadBalancer
	Targets      elb.ApplicationTargetGroup
	ServiceLogs  awslogs.ILogGroup
	Database     *datastores.Database
	DocStore     *datastores.DocStore // its cluster's instances, when the stack has DocumentDB
}

// Alarms is the CloudWatch alarms on the instance (or on the load balancer and its targets), the databases and the
// service's 5xx answers, to one SNS topic (TLS-only), with an e-mail subscription from context alarmEmail. Every alarm
// also notifies when it recovers. Thresholds are for the default sizes (docs/infra.md: Operations).
type Alarms struct {
	constructs.Construct
	Topic  awssns.Topic
	Alarms []awscloudwatch.Alarm
}

// NewAlarms makes the topic and the alarms of the mode props describes.
func NewAlarms(scope constructs.Construct, id string, props *AlarmsProps) *Alarms {
	this := constructs.NewConstruct(scope, &id)
	topic := awssns.NewTopic(this, jsii.String("Topic"), &awssns.TopicProps{
		DisplayName: jsii.String("aircraft platform alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	if props.Email != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(props.Email), nil))
	}
	a := &Alarms{Construct: this, Topic: topic}
	if props.InstanceID != nil {
		a.instanceAlarms(props)
	}
	if props.Targets != nil {
		a.fleetAlarms(props)
	}
	a.databaseAlarms(props)
	a.serverErrorAlarm(props)
	return a
}

// The alarms' comparisons and treatments of missing data.
var (
	gte, lt, gt             = awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD
	breaching, notBreaching = awscloudwatch.TreatMissingData_BREACHING, awscloudwatch.TreatMissingData_NOT_BREACHING
)

// fiveMinutes is the period of every alarm's metric.
func fiveMinutes() awscdk.Duration { return awscdk.Duration_Minutes(jsii.Number(5)) }

// metric is a metric over five minutes.
func metric(namespace, name, stat string, dims map[string]*string) awscloudwatch.Metric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(namespace), MetricName: jsii.String(name), Statistic: jsii.String(stat),
		Period: fiveMinutes(), DimensionsMap: &dims,
	})
}

// alarm adds an alarm that notifies the topic when it fires and when it recovers.
func (a *Alarms) alarm(id, what string, m awscloudwatch.IMetric, op awscloudwatch.ComparisonOperator, threshold float64, periods int, missing awscloudwatch.TreatMissingData) {
	a.Alarms = append(a.Alarms, NewAlarm(a.Construct, id, a.Topic, &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String(what),
		Metric:             m,
		ComparisonOperator: op,
		Threshold:          jsii.Number(threshold),
		EvaluationPeriods:  jsii.Number(float64(periods)),
		TreatMissingData:   missing,
	}))
}

// NewAlarm is an alarm of props in scope that notifies topic when it fires and when it recovers: every alarm of the
// stack is made here.
func NewAlarm(scope constructs.Construct, id string, topic awssns.ITopic, props *awscloudwatch.AlarmProps) awscloudwatch.Alarm {
	al := awscloudwatch.NewAlarm(scope, jsii.String(id), props)
	action := awscloudwatchactions.NewSnsAction(topic)
	al.AddAlarmAction(action)
	al.AddOkAction(action)
	return al
}

// AtLeast is the alarm most alarms are: metric at threshold or above for periods in a row, no data not breaching (an
// idle resource is not a failing one).
func AtLeast(what string, metric awscloudwatch.IMetric, threshold float64, periods int) *awscloudwatch.AlarmProps {
	return &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String(what),
		Metric:             metric,
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		Threshold:          jsii.Number(threshold),
		EvaluationPeriods:  jsii.Number(float64(periods)),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	}
}

// instanceAlarms watch the single instance: its status checks, its root volume and its CPU credits.
func (a *Alarms) instanceAlarms(props *AlarmsProps) {
	ec2 := map[string]*string{"InstanceId": props.InstanceID}
	a.alarm("InstanceStatusCheck", "The service instance or its host fails a status check (10 minutes): recover or replace it.",
		metric("AWS/EC2", "StatusCheckFailed", "Maximum", ec2), gte, 1, 2, breaching)
	a.alarm("InstanceDiskFree", fmt.Sprintf("The service instance's root volume (DOWNLOAD_PATH, logs) has less than %d GiB free: "+
		"below %d GiB aircraftd refuses downloads (DOWNLOAD_RESERVE_BYTES). Delete old downloads or grow the volume.",
		DiskAlarmFreeBytes>>30, downloadReserveBytes>>30),
		metric(MetricsNamespace(awscdk.Stack_Of(a.Construct)), "disk_free", "Minimum", ec2), lt, DiskAlarmFreeBytes, 2, notBreaching)
	if props.Burstable {
		a.alarm("InstanceCpuCredits", "The service instance has almost no CPU credits left (below 20): it is throttled to its baseline soon.",
			metric("AWS/EC2", "CPUCreditBalance", "Minimum", ec2), lt, 20, 3, notBreaching)
	}
}

// fleetAlarms are the load balancer's view of the fleet: its health check is the release gate's GET /api/v1/ready.
func (a *Alarms) fleetAlarms(props *AlarmsProps) {
	stat := func(s string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Statistic: jsii.String(s), Period: fiveMinutes()}
	}
	a.alarm("FleetUnhealthyInstances", "An instance of the fleet has failed the load balancer's readiness check for 15 minutes (a data store it cannot reach, or a stuck release).",
		props.Targets.Metrics().UnhealthyHostCount(stat("Maximum")), gte, 1, 3, notBreaching)
	a.alarm("FleetNoHealthyInstance", "No instance of the fleet is ready (10 minutes): the API answers 503 to everything.",
		props.Targets.Metrics().HealthyHostCount(stat("Minimum")), lt, 1, 2, breaching)
	a.alarm("LoadBalancerServerErrors", "The load balancer itself answered 5 or more requests with a 5xx in 5 minutes (no ready target, a target that timed out or reset).",
		props.LoadBalancer.Metrics().HttpCodeElb(elb.HttpCodeElb_ELB_5XX_COUNT, stat("Sum")), gte, 5, 1, notBreaching)
}

// databaseAlarms watch RDS (storage, CPU) and each DocumentDB instance (CPU, memory).
func (a *Alarms) databaseAlarms(props *AlarmsProps) {
	rds := map[string]*string{"DBInstanceIdentifier": props.Database.Instance.InstanceIdentifier()}
	a.alarm("DatabaseFreeStorage", "RDS PostgreSQL has less than 2 GiB of free storage (storage autoscaling grows it up to its maximum).",
		metric("AWS/RDS", "FreeStorageSpace", "Minimum", rds), lt, 2*1024*1024*1024, 1, breaching)
	a.alarm("DatabaseCpu", "RDS PostgreSQL CPU above 80 % for 15 minutes.",
		metric("AWS/RDS", "CPUUtilization", "Average", rds), gt, 80, 3, notBreaching)
	var docdbs []*string
	if props.DocStore.Cluster != nil {
		docdbs = *props.DocStore.Cluster.InstanceIdentifiers()
	}
	for i, docdb := range docdbs {
		dims := map[string]*string{"DBInstanceIdentifier": docdb}
		suffix := ""
		if i > 0 {
			suffix = fmt.Sprint(i + 1)
		}
		a.alarm("DocumentDbCpu"+suffix, "DocumentDB CPU above 80 % for 15 minutes.",
			metric("AWS/DocDB", "CPUUtilization", "Average", dims), gt, 80, 3, notBreaching)
		a.alarm("DocumentDbMemory"+suffix, "DocumentDB has less than 256 MiB of freeable memory (15 minutes).",
			metric("AWS/DocDB", "FreeableMemory", "Minimum", dims), lt, 256*1024*1024, 3, notBreaching)
	}
}

// serverErrorAlarm counts aircraftd's 5xx answers from its access log (one JSON line per request).
func (a *Alarms) serverErrorAlarm(props *AlarmsProps) {
	filter := awslogs.NewMetricFilter(a.Construct, jsii.String("ServerErrors"), &awslogs.MetricFilterProps{
		LogGroup:        props.ServiceLogs,
		FilterPattern:   awslogs.FilterPattern_Literal(jsii.String(serverErrorPattern)),
		MetricNamespace: jsii.String(MetricsNamespace(awscdk.Stack_Of(a.Construct))),
		MetricName:      jsii.String("ServerErrors"),
		MetricValue:     jsii.String("1"),
		DefaultValue:    jsii.Number(0),
	})
	a.alarm("ServiceServerErrors", "aircraftd answered 5 or more requests with a 5xx status in 5 minutes (its log: the LogGroupName output).",
		filter.Metric(&awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: fiveMinutes()}), gte, 5, 1, notBreaching)
}

// serverErrorPattern matches aircraftd's access log lines of 5xx answers.
const serverErrorPattern = `{ $.msg = "request" && $.status >= 500 }`
