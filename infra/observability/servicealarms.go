package observability

// Alarms on what aircraftd itself knows (its Prometheus metrics, published by the agent: agentmetrics.go), to the
// stack's alarm topic: files quarantined, ingestion or downloads failing, callers waiting for a database connection,
// memory near the instance's.

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Thresholds of the service's alarms (docs/infra.md: Operations).
const (
	quarantineAlarmPercent = 5         // of the files ingestion ended in 5 minutes
	downloadAlarmPercent   = 10        // of the lane files downloads ended in 5 minutes
	poolWaitAlarmSeconds   = 30        // waited for a connection in 5 minutes, by all callers together
	memoryAlarmBytes       = 768 << 20 // three quarters of the default t2.micro's 1 GiB
	ingestRoute            = "/process-s3-data"
	serviceAlarmMinutes    = 5 // the period of every service alarm
)

// serviceMetric is one of aircraftd's metrics as the agent publishes it (job dimension and labels as dimensions).
func serviceMetric(namespace, name, stat string, period awscdk.Duration, labels map[string]string) awscloudwatch.Metric {
	dims := map[string]*string{"job": jsii.String(metricsJob)}
	for k, v := range labels {
		dims[k] = jsii.String(v)
	}
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(namespace), MetricName: jsii.String(name), Statistic: jsii.String(stat),
		Period: period, DimensionsMap: &dims,
	})
}

// addServiceAlarms adds the alarms on aircraftd's metrics in namespace, each notifying topic when it fires and when it
// recovers. No data (an idle service, or no scrape yet) is not breaching: the instance and 5xx alarms cover a service
// that is down.
func addServiceAlarms(scope constructs.Construct, topic awssns.ITopic, namespace string) []awscloudwatch.Alarm {
	period := awscdk.Duration_Minutes(jsii.Number(serviceAlarmMinutes))
	m := func(name, stat string, labels map[string]string) awscloudwatch.Metric {
		return serviceMetric(namespace, name, stat, period, labels)
	}
	math := func(expr, label string, using map[string]awscloudwatch.IMetric) awscloudwatch.IMetric {
		return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression: jsii.String(expr), Label: jsii.String(label), UsingMetrics: &using, Period: period,
		})
	}
	var alarms []awscloudwatch.Alarm
	alarm := func(id, what string, metric awscloudwatch.IMetric, threshold float64, periods int) {
		alarms = append(alarms, NewAlarm(scope, id, topic, AtLeast(what, metric, threshold, periods)))
	}

	alarm("ServiceQuarantineRate", fmt.Sprintf("%d %% or more of the files ingestion ended in 5 minutes were quarantined "+
		"(the object's fault: denied, corrupt, too big): see the quarantine and its reasons in the ledger.", quarantineAlarmPercent),
		math("IF(files > 0, 100 * FILL(quarantined, 0) / files, 0)", "quarantined %", map[string]awscloudwatch.IMetric{
			"quarantined": m("aircraft_ingest_quarantined_total", "Sum", nil),
			"files":       m("aircraft_ingest_files_total", "Sum", nil),
		}), quarantineAlarmPercent, 1)
	alarm("ServiceIngestFailures", "An ingestion failed in 5 minutes (a 5xx answer to "+ingestRoute+", or a failed ingest job): "+
		"a dependency (S3, PostgreSQL) is down or refusing; the service log names it.",
		math("FILL(requests, 0) + FILL(jobs, 0)", "failed ingestions", map[string]awscloudwatch.IMetric{
			"requests": m("aircraft_http_requests_total", "Sum", map[string]string{"route": ingestRoute, "status_class": "5xx"}),
			"jobs":     m("aircraft_jobs_ended_total", "Sum", map[string]string{"kind": "ingest", "state": "failed"}),
		}), 1, 1)
	alarm("ServiceDownloadFailureRate", fmt.Sprintf("%d %% or more of the lane files downloads ended in 5 minutes failed "+
		"(for 10 minutes): the file records keep each one's last error.", downloadAlarmPercent),
		math("IF(files > 0, 100 * FILL(failed, 0) / files, 0)", "failed %", map[string]awscloudwatch.IMetric{
			"failed": m("aircraft_download_files_total", "Sum", map[string]string{"outcome": "failed"}),
			"files":  m("aircraft_download_files_total", "Sum", nil),
		}), downloadAlarmPercent, 2)
	alarm("ServicePoolWaits", fmt.Sprintf("Callers waited %d s or more in 5 minutes for a database connection (10 minutes): "+
		"a pool is too small for the load (the dashboard names the store and pool), or the database is slow.", poolWaitAlarmSeconds),
		m("aircraft_db_pool_wait_seconds_total", "Sum", nil), poolWaitAlarmSeconds, 2)
	alarm("ServiceMemory", fmt.Sprintf("aircraftd's resident memory reached %d MiB (10 minutes), near the instance's: "+
		"look for what holds it (GOMEMLIMIT, jobs running) before the kernel kills it.", memoryAlarmBytes>>20),
		m("process_resident_memory_bytes", "Maximum", nil), memoryAlarmBytes, 2)
	return alarms
}
