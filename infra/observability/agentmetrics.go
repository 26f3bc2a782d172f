package observability

// The service's own metrics on AWS: the CloudWatch agent on each instance scrapes aircraftd's Prometheus endpoint
// (METRICS_ADDR, loopback) every minute and publishes the metrics chosen below into the stack's namespace, as embedded
// metric format (EMF) events in a log group of their own. The agent turns counters into the increase since the last
// scrape (so a Sum over a period is what happened in it) and drops histograms: a latency percentile cannot come through
// it.
//
// Only bounded labels become dimensions (route template, status class, outcome, reason, kind, state, store, pool),
// never a key, icao or job id; none is per instance, so a fleet's instances add up in one series. The names are the
// app's (docs/metrics.txt, checked by the tests).

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Where the agent scrapes aircraftd: METRICS_ADDR's default (loopback only, so no token is needed).
const (
	metricsTarget     = "127.0.0.1:9464"
	metricsPath       = "/metrics"
	metricsJob        = "aircraftd" // the Prometheus job, and the job dimension of every published metric
	ScrapeConfigPath  = "/opt/aws/amazon-cloudwatch-agent/etc/aircraft-prometheus.yaml"
	scrapeIntervalSec = 60
)

// metricDeclaration publishes metrics (by name) with each set of dimensions (label names).
type metricDeclaration struct {
	Metrics    []string
	Dimensions [][]string
}

// serviceMetricDeclarations are the metrics of aircraftd the agent publishes, and their dimensions. "job" is the
// constant metricsJob: a metric published without a label of its own has it as its only dimension.
func serviceMetricDeclarations() []metricDeclaration {
	job := []string{"job"}
	with := func(labels ...string) []string { return append([]string{"job"}, labels...) }
	return []metricDeclaration{
		{[]string{"aircraft_http_requests_total"}, [][]string{with("status_class"), with("route"), with("route", "status_class")}},
		{[]string{"aircraft_ingest_bytes_total", "aircraft_ingest_observations_total", "aircraft_ingest_bisections_total",
			"aircraft_download_bytes_total", "aircraft_download_retries_total", "aircraft_download_resumes_total",
			"aircraft_download_checksum_failures_total", "aircraft_jobs_running", "aircraft_jobs_max_running",
			"process_resident_memory_bytes", "process_cpu_seconds_total", "go_goroutines", "go_memstats_heap_inuse_bytes"},
			[][]string{job}},
		{[]string{"aircraft_ingest_files_total", "aircraft_download_files_total"}, [][]string{job, with("outcome")}},
		{[]string{"aircraft_ingest_quarantined_total"}, [][]string{job, with("reason")}},
		{[]string{"aircraft_jobs_started_total", "aircraft_jobs_refused_total"}, [][]string{with("kind")}},
		{[]string{"aircraft_jobs_ended_total"}, [][]string{with("kind", "state")}},
		{[]string{"aircraft_db_pool_wait_seconds_total", "aircraft_db_pool_waits_total"}, [][]string{job, with("store", "pool")}},
		{[]string{"aircraft_db_pool_acquired_connections", "aircraft_db_pool_waiting", "aircraft_db_pool_max_connections"},
			[][]string{with("store", "pool")}},
	}
}

// PrometheusScrapeConfig is the agent's Prometheus scrape configuration: aircraftd on loopback, every minute. The
// status code of a request becomes its class (2xx, 4xx, 5xx): a bounded dimension that says what failed.
func PrometheusScrapeConfig() string {
	return fmt.Sprintf(`global:
  scrape_interval: %[1]ds
  scrape_timeout: 10s
scrape_configs:
  - job_name: %[2]s
    metrics_path: %[3]s
    sample_limit: 5000
    static_configs:
      - targets: ["%[4]s"]
    metric_relabel_configs:
      - source_labels: [status]
        regex: "([1-5])..*"
        target_label: status_class
        replacement: "${1}xx"
`, scrapeIntervalSec, metricsJob, metricsPath, metricsTarget)
}

// prometheusAgentSection is the agent's logs.metrics_collected.prometheus: scrape with PrometheusScrapeConfig, publish
// serviceMetricDeclarations into namespace through logGroup.
func prometheusAgentSection(namespace, logGroup string) map[string]any {
	var declarations []any
	for _, d := range serviceMetricDeclarations() {
		var selectors []any
		for _, m := range d.Metrics {
			selectors = append(selectors, "^"+m+"$")
		}
		var dims []any
		for _, set := range d.Dimensions {
			dims = append(dims, toAny(set))
		}
		declarations = append(declarations, map[string]any{
			"source_labels": []any{"job"}, "label_matcher": "^" + metricsJob + "$",
			"dimensions": dims, "metric_selectors": selectors,
		})
	}
	units := map[string]any{}
	for _, d := range serviceMetricDeclarations() {
		for _, m := range d.Metrics {
			switch {
			case strings.HasSuffix(m, "_bytes_total") || strings.HasSuffix(m, "_bytes"):
				units[m] = "Bytes"
			case strings.HasSuffix(m, "_seconds_total"):
				units[m] = "Seconds"
			default:
				units[m] = "Count"
			}
		}
	}
	return map[string]any{
		"log_group_name":         logGroup,
		"prometheus_config_path": ScrapeConfigPath,
		"emf_processor": map[string]any{
			"metric_declaration_dedup": true,
			"metric_namespace":         namespace,
			"metric_unit":              units,
			"metric_declaration":       declarations,
		},
	}
}

func toAny(s []string) []any {
	a := make([]any, len(s))
	for i, v := range s {
		a[i] = v
	}
	return a
}

// ServiceMetrics is where the agent publishes aircraftd's metrics from: the log group of their EMF events, which role
// (the instances') may write.
type ServiceMetrics struct {
	Namespace string
	LogGroup  awslogs.LogGroup
}

// NewServiceMetrics makes the EMF log group, /aircraft/<stackName>/metrics, and lets role write to it.
func NewServiceMetrics(scope constructs.Construct, id string, role awsiam.IRole, namespace string) *ServiceMetrics {
	logs := awslogs.NewLogGroup(scope, jsii.String(id), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aircraft/" + *awscdk.Stack_Of(scope).StackName() + "/metrics"),
		Retention:     awslogs.RetentionDays_ONE_WEEK,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY, // only the carrier of the metrics
	})
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("PublishServiceMetrics"),
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	return &ServiceMetrics{Namespace: namespace, LogGroup: logs}
}

// AddTo adds the Prometheus scrape to an agent configuration (CloudWatchAgentConfig).
func (m *ServiceMetrics) AddTo(agent map[string]any) {
	logs := agent["logs"].(map[string]any)
	logs["metrics_collected"] = map[string]any{"prometheus": prometheusAgentSection(m.Namespace, *m.LogGroup.LogGroupName())}
}
