package observability

// The stack's CloudWatch dashboard: the first screen of whoever is on call. Top down: is it healthy (the alarms,
// requests and errors), is it keeping up (ingest and download throughput, jobs, pool waits), what is failing
// (quarantined, failed files), and the machines under it (memory, CPU credits, the database, the load balancer). The
// service's figures are its Prometheus metrics as the agent publishes them (agentmetrics.go).

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	elb "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// requestLatencyMetric is the time aircraftd took to answer a request, in ms, by route: a metric filter on its access
// log.
const requestLatencyMetric = "RequestLatency"

// ServiceMonitoringProps is what the dashboard shows and the service's alarms tell.
type ServiceMonitoringProps struct {
	Namespace    string                      // the stack's (metricsNamespace), where the agent publishes aircraftd's metrics
	Topic        awssns.ITopic               // the stack's alarm topic
	Alarms       []awscloudwatch.IAlarm      // the stack's other alarms, shown with the service's at the top
	DatabaseID   *string                     // the RDS instance identifier
	InstanceID   *string                     // the single instance (its CPU credits), or nil
	GroupName    *string                     // the fleet's Auto Scaling group (its CPU credits), or nil
	Burstable    bool                        // a T instance: it has CPU credits
	ServiceLogs  awslogs.ILogGroup           // aircraftd's log: its access log lines give the latency by route
	LoadBalancer elb.ApplicationLoadBalancer // the load-balanced mode's, or nil
	Targets      elb.ApplicationTargetGroup
}

// ServiceMonitoring is the dashboard and the alarms on the service's own metrics.
type ServiceMonitoring struct {
	constructs.Construct
	Dashboard awscloudwatch.Dashboard
	Alarms    []awscloudwatch.Alarm
}

// NewServiceMonitoring adds the service's alarms (servicealarms.go) and the dashboard, and outputs its name.
func NewServiceMonitoring(scope constructs.Construct, id string, props *ServiceMonitoringProps) *ServiceMonitoring {
	this := constructs.NewConstruct(scope, &id)
	stack := awscdk.Stack_Of(this)
	alarms := addServiceAlarms(this, props.Topic, props.Namespace)
	addLatencyFilter(this, props)
	w := panels{ns: props.Namespace, minute: awscdk.Duration_Minutes(jsii.Number(1))}

	var all []interfacesawscloudwatch.IAlarmRef
	for _, a := range props.Alarms {
		all = append(all, a)
	}
	for _, a := range alarms {
		all = append(all, a)
	}
	rows := [][]awscloudwatch.IWidget{{awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
		Title: jsii.String("Alarms"), Alarms: &all, Width: jsii.Number(24), Height: jsii.Number(3),
	})}}
	rows = append(rows, w.serviceRows()...)
	rows = append(rows, w.machineRows(props)...)
	if props.Targets != nil {
		rows = append(rows, w.loadBalancerRow(props))
	}

	name := strings.ReplaceAll(*stack.StackName(), "/", "-")
	dashboard := awscloudwatch.NewDashboard(this, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName:   jsii.String(name),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
		Widgets:         toWidgetRows(rows),
	})
	awscdk.NewCfnOutput(stack, jsii.String("DashboardName"), &awscdk.CfnOutputProps{
		Value: jsii.String(name), Description: jsii.String("CloudWatch dashboard of the service (aircraftd's metrics, alarms, database)"),
	})
	return &ServiceMonitoring{Construct: this, Dashboard: dashboard, Alarms: alarms}
}

// addLatencyFilter counts the latency by route: the agent drops Prometheus histograms, so each access log line's
// duration is the value (CloudWatch computes percentiles from the values), by its route template (bounded).
func addLatencyFilter(scope constructs.Construct, props *ServiceMonitoringProps) {
	awslogs.NewMetricFilter(scope, jsii.String("RequestLatency"), &awslogs.MetricFilterProps{
		LogGroup:        props.ServiceLogs,
		FilterPattern:   awslogs.FilterPattern_Literal(jsii.String(`{ $.msg = "request" && $.duration_ms >= 0 }`)),
		MetricNamespace: jsii.String(props.Namespace),
		MetricName:      jsii.String(requestLatencyMetric),
		MetricValue:     jsii.String("$.duration_ms"),
		Dimensions:      &map[string]*string{"route": jsii.String("$.route")},
		Unit:            awscloudwatch.Unit_MILLISECONDS,
	})
}

// serviceRows are the rows of aircraftd's own figures: requests and errors, latency, ingest, downloads, jobs and the
// database pools' waits.
func (w panels) serviceRows() [][]awscloudwatch.IWidget {
	return [][]awscloudwatch.IWidget{
		{
			graph("Requests per minute, by status class", []awscloudwatch.IMetric{
				w.metric("aircraft_http_requests_total", "Sum", "2xx", map[string]string{"status_class": "2xx"}),
				w.metric("aircraft_http_requests_total", "Sum", "4xx", map[string]string{"status_class": "4xx"}),
				w.metric("aircraft_http_requests_total", "Sum", "5xx", map[string]string{"status_class": "5xx"}),
			}),
			graph("Requests per minute, by route", []awscloudwatch.IMetric{w.search("aircraft_http_requests_total", "Sum", "", "route")}),
			graph("5xx per minute, by route", []awscloudwatch.IMetric{
				w.searchWhere("aircraft_http_requests_total", "Sum", "", `status_class="5xx"`, "route", "status_class"),
			}),
		},
		{
			awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
				Title: jsii.String("Latency p99 by route (ms), from the access log"), Left: &[]awscloudwatch.IMetric{w.latency("p99")},
				Width: jsii.Number(24), Height: jsii.Number(6),
			}),
		},
		{
			graph("Ingest MB/s", []awscloudwatch.IMetric{w.mbPerSecond("aircraft_ingest_bytes_total", "MB/s")},
				w.metric("aircraft_ingest_observations_total", "Sum", "observations per minute", nil)),
			graph("Ingest files per minute, by outcome", []awscloudwatch.IMetric{w.search("aircraft_ingest_files_total", "Sum", "", "outcome")},
				w.metric("aircraft_ingest_bisections_total", "Sum", "bisections", nil)),
			graph("Quarantined files per minute, by reason", []awscloudwatch.IMetric{w.search("aircraft_ingest_quarantined_total", "Sum", "", "reason")}),
		},
		{
			graph("Download MB/s", []awscloudwatch.IMetric{w.mbPerSecond("aircraft_download_bytes_total", "MB/s")}),
			graph("Download files per minute, by outcome", []awscloudwatch.IMetric{w.search("aircraft_download_files_total", "Sum", "", "outcome")}),
			graph("Download retries, resumes, checksum failures per minute", []awscloudwatch.IMetric{
				w.metric("aircraft_download_retries_total", "Sum", "retries", nil),
				w.metric("aircraft_download_resumes_total", "Sum", "resumes", nil),
				w.metric("aircraft_download_checksum_failures_total", "Sum", "checksum failures", nil),
			}),
		},
		{
			graph("Jobs running (of JOBS_MAX_RUNNING)", []awscloudwatch.IMetric{
				w.metric("aircraft_jobs_running", "Maximum", "running", nil), w.metric("aircraft_jobs_max_running", "Maximum", "slots", nil),
			}, w.search("aircraft_jobs_refused_total", "Sum", "refused", "kind")),
			graph("Jobs started and ended per minute", []awscloudwatch.IMetric{
				w.search("aircraft_jobs_started_total", "Sum", "started", "kind"),
				w.search("aircraft_jobs_ended_total", "Sum", "ended", "kind", "state"),
			}),
			graph("Database pools: seconds waited per minute", []awscloudwatch.IMetric{
				w.search("aircraft_db_pool_wait_seconds_total", "Sum", "", "store", "pool"),
			}, w.search("aircraft_db_pool_waiting", "Maximum", "waiting", "store", "pool")),
		},
	}
}

// machineRows are the rows of what the service runs on: its process's memory and pool connections, the instances' CPU
// credits (a T instance), and the database.
func (w panels) machineRows(props *ServiceMonitoringProps) [][]awscloudwatch.IWidget {
	machine := []awscloudwatch.IWidget{
		graph("aircraftd memory (bytes)", []awscloudwatch.IMetric{
			w.metric("process_resident_memory_bytes", "Maximum", "resident", nil),
			w.metric("go_memstats_heap_inuse_bytes", "Maximum", "Go heap in use", nil),
		}, w.metric("go_goroutines", "Maximum", "goroutines", nil)),
		graph("Database pools: connections in use", []awscloudwatch.IMetric{
			w.search("aircraft_db_pool_acquired_connections", "Maximum", "", "store", "pool"),
		}),
	}
	if props.Burstable {
		dims := map[string]*string{"InstanceId": props.InstanceID}
		if props.InstanceID == nil {
			dims = map[string]*string{"AutoScalingGroupName": props.GroupName}
		}
		machine = append(machine, graph("CPU credits and utilization", []awscloudwatch.IMetric{
			w.aws("AWS/EC2", "CPUCreditBalance", "Minimum", "credit balance", dims),
		}, w.aws("AWS/EC2", "CPUUtilization", "Average", "CPU %", dims)))
	}
	rds := map[string]*string{"DBInstanceIdentifier": props.DatabaseID}
	return [][]awscloudwatch.IWidget{machine, {
		graph("PostgreSQL CPU %", []awscloudwatch.IMetric{w.aws("AWS/RDS", "CPUUtilization", "Average", "CPU %", rds)}),
		graph("PostgreSQL connections", []awscloudwatch.IMetric{w.aws("AWS/RDS", "DatabaseConnections", "Maximum", "connections", rds)}),
		graph("PostgreSQL free storage (bytes)", []awscloudwatch.IMetric{w.aws("AWS/RDS", "FreeStorageSpace", "Minimum", "free", rds)}),
	}}
}

// loadBalancerRow is the load-balanced mode's row: the targets' health, their response time and the 5xx.
func (w panels) loadBalancerRow(props *ServiceMonitoringProps) []awscloudwatch.IWidget {
	opts := func(stat, label string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Statistic: jsii.String(stat), Label: jsii.String(label), Period: w.minute}
	}
	tm, lm := props.Targets.Metrics(), props.LoadBalancer.Metrics()
	return []awscloudwatch.IWidget{
		graph("Load balancer targets", []awscloudwatch.IMetric{
			tm.HealthyHostCount(opts("Minimum", "healthy")), tm.UnhealthyHostCount(opts("Maximum", "unhealthy")),
		}),
		graph("Load balancer: target response time p99 (s)", []awscloudwatch.IMetric{tm.TargetResponseTime(opts("p99", "p99"))}),
		graph("Load balancer: 5xx per minute", []awscloudwatch.IMetric{
			lm.HttpCodeElb(elb.HttpCodeElb_ELB_5XX_COUNT, opts("Sum", "load balancer")),
			tm.HttpCodeTarget(elb.HttpCodeTarget_TARGET_5XX_COUNT, opts("Sum", "targets")),
		}),
	}
}

// panels makes the dashboard's metrics, each over one minute: aircraftd's, in the namespace ns where the agent
// publishes them, and AWS's.
type panels struct {
	ns     string
	minute awscdk.Duration
}

// metric is one series of aircraftd's metric name: the one with labels.
func (w panels) metric(name, stat, label string, labels map[string]string) awscloudwatch.IMetric {
	return serviceMetric(w.ns, name, stat, w.minute, labels).With(&awscloudwatch.MetricOptions{Label: jsii.String(label)})
}

// searchWhere is every series of a metric by some of its labels (route, outcome, reason...), whatever their values,
// those matching where (a search term, or "").
func (w panels) searchWhere(name, stat, label, where string, labels ...string) awscloudwatch.IMetric {
	schema := fmt.Sprintf(`{"%s",%s}`, w.ns, strings.Join(append([]string{"job"}, labels...), ","))
	expr := strings.TrimSpace(fmt.Sprintf(`%s MetricName="%s" %s`, schema, name, where))
	// Each series is labelled by its values of labels (a dynamic label), after label.
	names := []string{label}
	for _, l := range labels {
		names = append(names, "${PROP('Dim."+l+"')}")
	}
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(fmt.Sprintf(`SEARCH('%s', '%s', 60)`, expr, stat)), Period: w.minute,
		Label: jsii.String(strings.TrimSpace(strings.Join(names, " "))),
	})
}

// search is every series of a metric by some of its labels.
func (w panels) search(name, stat, label string, labels ...string) awscloudwatch.IMetric {
	return w.searchWhere(name, stat, label, "", labels...)
}

// mbPerSecond is the rate of a counter of bytes, in MB/s.
func (w panels) mbPerSecond(name, label string) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("FILL(bytes, 0) / PERIOD(bytes) / 1000000"), Label: jsii.String(label), Period: w.minute,
		UsingMetrics: &map[string]awscloudwatch.IMetric{"bytes": serviceMetric(w.ns, name, "Sum", w.minute, nil)},
	})
}

// latency is a statistic of the request latency (addLatencyFilter), by route.
func (w panels) latency(stat string) awscloudwatch.IMetric {
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(fmt.Sprintf(`SEARCH('{"%s",route} MetricName="%s"', '%s', 60)`, w.ns, requestLatencyMetric, stat)),
		Label:      jsii.String(stat + " ${PROP('Dim.route')}"), Period: w.minute,
	})
}

// aws is a metric that AWS publishes.
func (w panels) aws(namespace, name, stat, label string, dims map[string]*string) awscloudwatch.IMetric {
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String(namespace), MetricName: jsii.String(name), Statistic: jsii.String(stat),
		Period: w.minute, DimensionsMap: &dims, Label: jsii.String(label),
	})
}

// graph is a third of a row: left's series on the left axis, right's on the right one.
func graph(title string, left []awscloudwatch.IMetric, right ...awscloudwatch.IMetric) awscloudwatch.IWidget {
	p := &awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6)}
	if len(right) > 0 {
		p.Right = &right
	}
	return awscloudwatch.NewGraphWidget(p)
}

func toWidgetRows(rows [][]awscloudwatch.IWidget) *[]*[]awscloudwatch.IWidget {
	out := make([]*[]awscloudwatch.IWidget, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	return &out
}

// IAlarms are the alarms of a, for the dashboard's alarm status.
func (a *Alarms) IAlarms() []awscloudwatch.IAlarm {
	out := make([]awscloudwatch.IAlarm, len(a.Alarms))
	for i, al := range a.Alarms {
		out[i] = al
	}
	return out
}
