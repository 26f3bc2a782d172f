package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// servedMetrics are the names of the metrics aircraftd serves: docs/metrics.txt, which the app's metrics package
// generates from its registry and checks in its tests (infra cannot import the app).
func servedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(repo, "docs", "metrics.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	served := map[string]bool{}
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			served[line] = true
		}
	}
	if len(served) < 20 || !served["aircraft_http_requests_total"] {
		t.Fatalf("docs/metrics.txt names %d metrics; want the service's whole registry", len(served))
	}
	return served
}

// isMetricsEvents reports whether r is the log group of the agent's metric events (NewServiceMetrics), not the
// service's.
func isMetricsEvents(r Resource) bool { return strings.Contains(r.ID, "ServiceMetricsEvents") }

// serviceMetricName is a name of the service's metrics as it may appear in a template: the app's namespace (aircraft_),
// or the Go runtime's and the process's collectors.
var serviceMetricName = regexp.MustCompile(`\b(?:aircraft|go|process)_[a-z0-9_]+`)

// agentConfig is the CloudWatch agent's configuration on the instances of the configuration name, and the Prometheus
// scrape configuration beside it.
func agentConfig(t *testing.T, name string) (agent map[string]any, scrape string) {
	t.Helper()
	s := stackOf(t, name)
	config := "app"
	if strings.HasPrefix(name, "loadBalanced") {
		config = "install"
	}
	files, _, _ := initConfig(t, s, config)
	a, ok := files["/opt/aws/amazon-cloudwatch-agent/etc/aircraft.json"]["content"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no agent configuration", name)
	}
	return a, joinedText(files["/opt/aws/amazon-cloudwatch-agent/etc/aircraft-prometheus.yaml"]["content"])
}

// published are the metrics the agent's configuration publishes, with their sets of dimensions.
func published(t *testing.T, agent map[string]any) map[string][][]string {
	t.Helper()
	var cfg struct {
		Logs struct {
			MetricsCollected struct {
				Prometheus struct {
					EMF struct {
						Namespace    string `json:"metric_namespace"`
						Declarations []struct {
							Selectors  []string   `json:"metric_selectors"`
							Dimensions [][]string `json:"dimensions"`
						} `json:"metric_declaration"`
					} `json:"emf_processor"`
				} `json:"prometheus"`
			} `json:"metrics_collected"`
		} `json:"logs"`
	}
	mustUnmarshal(t, []byte(jsonOf(agent)), &cfg)
	out := map[string][][]string{}
	for _, d := range cfg.Logs.MetricsCollected.Prometheus.EMF.Declarations {
		for _, sel := range d.Selectors {
			name, ok := strings.CutPrefix(sel, "^")
			name, ok2 := strings.CutSuffix(name, "$")
			if !ok || !ok2 || regexp.QuoteMeta(name) != name {
				t.Errorf("selector %q is not one exact name", sel)
			}
			out[name] = append(out[name], d.Dimensions...)
		}
	}
	return out
}

// In both modes the agent scrapes aircraftd where it serves its metrics by default (.env.example's METRICS_ADDR, which
// the instance environment leaves as is) and publishes, into the stack's namespace, only metrics the service serves,
// with bounded dimensions only: never a key, an icao, a job id, a version or an instance.
func TestAgentPublishesServedMetricsWithBoundedDimensions(t *testing.T) {
	served := servedMetrics(t)
	example, err := os.ReadFile(filepath.Join(repo, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	addr := regexp.MustCompile(`(?m)^(?:# )?METRICS_ADDR=(\S+)`).FindSubmatch(example)
	if addr == nil {
		t.Fatal(".env.example has no METRICS_ADDR")
	}
	bounded := []string{"job", "route", "status_class", "outcome", "reason", "kind", "state", "store", "pool"}
	for _, name := range []string{"default", "loadBalanced"} {
		s := stackOf(t, name)
		var env map[string]string
		if name == "default" {
			env = s.serviceEnv(t)
		} else {
			env = fleetEnv(t, s)
		}
		if v, ok := env["METRICS_ADDR"]; ok {
			t.Errorf("%s: the instance sets METRICS_ADDR=%s; the agent scrapes the default", name, v)
		}
		agent, scrape := agentConfig(t, name)
		for _, want := range []string{`job_name: aircraftd`, `targets: ["` + string(addr[1]) + `"]`, `metrics_path: /metrics`, `target_label: status_class`} {
			if !strings.Contains(scrape, want) {
				t.Errorf("%s: the scrape configuration lacks %s:\n%s", name, want, scrape)
			}
		}
		if !strings.Contains(jsonOf(agent), `"metric_namespace":"Aircraft/AircraftPlatform"`) {
			t.Errorf("%s: the agent does not publish into the stack's namespace: %s", name, jsonOf(agent))
		}
		pub := published(t, agent)
		if len(pub) < 15 {
			t.Errorf("%s: the agent publishes %d metrics", name, len(pub))
		}
		for metric, sets := range pub {
			if !served[metric] {
				t.Errorf("%s: the agent publishes %s, which aircraftd does not serve (docs/metrics.txt)", name, metric)
			}
			for _, set := range sets {
				for _, dim := range set {
					if !slices.Contains(bounded, dim) {
						t.Errorf("%s: %s has the dimension %s, not a bounded one", name, metric, dim)
					}
				}
			}
		}
		// The EMF events go to a log group of their own, which the instances may write.
		prom := jsonOf(agent["logs"].(map[string]any)["metrics_collected"].(map[string]any)["prometheus"])
		lg := regexp.MustCompile(`"log_group_name":\{"Ref":"(\w+)"\}`).FindStringSubmatch(prom)
		if lg == nil || !isMetricsEvents(s.Resource(t, lg[1])) {
			t.Fatalf("%s: no log group of the metrics: %s", name, jsonOf(agent["logs"]))
		}
		if !strings.Contains(jsonOf(s.Resources("AWS::IAM::Policy")),
			`"Action":["logs:CreateLogStream","logs:DescribeLogStreams","logs:PutLogEvents"],"Effect":"Allow","Resource":{"Fn::GetAtt":["`+lg[1]+`","Arn"]}`) {
			t.Errorf("%s: the instances may not write the metrics' log group %s", name, lg[1])
		}
	}
}

// The dashboard of each mode names only metrics aircraftd serves, and publishes (docs/metrics.txt and the agent's
// declarations), and shows what an operator needs: requests and errors by route, ingest and download throughput,
// quarantine, jobs, pool waits, memory, CPU credits, the database; the load balancer's targets in that mode.
func TestDashboardNamesServedMetrics(t *testing.T) {
	served := servedMetrics(t)
	common := []string{`"AWS/RDS","CPUUtilization"`, `"AWS/RDS","DatabaseConnections"`, `"AWS/RDS","FreeStorageSpace"`,
		`"AWS/EC2","CPUCreditBalance"`, `"type":"alarm"`, `aircraft_ingest_quarantined_total`, `aircraft_download_bytes_total`,
		`aircraft_db_pool_wait_seconds_total`, `process_resident_memory_bytes`, `status_class=\"5xx\"`}
	want := map[string][]string{
		"default":      append([]string{`"InstanceId"`}, common...),
		"loadBalanced": append([]string{`"AutoScalingGroupName"`, `"HealthyHostCount"`, `"UnHealthyHostCount"`, `"TargetResponseTime"`}, common...),
	}
	for name, w := range want {
		s := stackOf(t, name)
		agent, _ := agentConfig(t, name)
		pub := published(t, agent)
		body := joinedText(s.One(t, "AWS::CloudWatch::Dashboard").Props["DashboardBody"])
		var parsed any
		if err := json.Unmarshal([]byte(tokensAsText(s.One(t, "AWS::CloudWatch::Dashboard").Props["DashboardBody"])), &parsed); err != nil {
			t.Fatalf("%s: the dashboard body is not JSON: %v", name, err)
		}
		names := serviceMetricName.FindAllString(body, -1)
		slices.Sort(names)
		names = slices.Compact(names)
		if len(names) < 15 {
			t.Errorf("%s: the dashboard names %d of the service's metrics: %v", name, len(names), names)
		}
		for _, n := range names {
			if !served[n] {
				t.Errorf("%s: the dashboard names %s, which aircraftd does not serve (docs/metrics.txt)", name, n)
			} else if pub[n] == nil {
				t.Errorf("%s: the dashboard names %s, which the agent does not publish", name, n)
			}
		}
		for _, x := range w {
			if !strings.Contains(body, x) {
				t.Errorf("%s: the dashboard lacks %s", name, x)
			}
		}
		// The stack's namespace holds the service's metrics, and those of the metric filters on its log.
		filters := map[string]string{}
		for _, f := range s.Resources("AWS::Logs::MetricFilter") {
			for _, tr := range list(f.Props["MetricTransformations"]) {
				tr := tr.(map[string]any)
				filters[strOf(tr["MetricName"])] = jsonOf(tr["Dimensions"])
			}
		}
		for _, m := range regexp.MustCompile(`\["Aircraft/AircraftPlatform","(\w+)"|\{\\"Aircraft/AircraftPlatform\\"[^}]*\} MetricName=\\"(\w+)\\"`).FindAllStringSubmatch(body, -1) {
			n := m[1] + m[2]
			if !served[n] && filters[n] == "" {
				t.Errorf("%s: the dashboard shows %s from the stack's namespace: neither served by aircraftd nor a metric filter", name, n)
			}
		}
		if want := `[{"Key":"route","Value":"$.route"}]`; filters["RequestLatency"] != want || !strings.Contains(body, `MetricName=\"RequestLatency\"', 'p99'`) {
			t.Errorf("%s: no p99 by route from the access log (filter dimensions %s)", name, filters["RequestLatency"])
		}
		if strings.Contains(body, `"AWS/ApplicationELB"`) != (name == "loadBalanced") {
			t.Errorf("%s: load balancer widgets only in the load-balanced mode", name)
		}
	}
}

// The service's alarms, in both modes, watch metrics aircraftd serves and the agent publishes, with the dimensions it
// publishes them with, and notify the stack's topic.
func TestServiceAlarmsWatchPublishedMetrics(t *testing.T) {
	served := servedMetrics(t)
	for _, name := range []string{"default", "loadBalanced"} {
		s := stackOf(t, name)
		agent, _ := agentConfig(t, name)
		pub := published(t, agent)
		topic := s.One(t, "AWS::SNS::Topic").ID
		var got []string
		for _, a := range s.Resources("AWS::CloudWatch::Alarm") {
			var metrics []map[string]any // {MetricName, Dimensions}
			if ms, ok := a.Props["Metrics"].([]any); ok {
				for _, q := range ms {
					if stat, ok := q.(map[string]any)["MetricStat"].(map[string]any); ok {
						metrics = append(metrics, stat["Metric"].(map[string]any))
					}
				}
			} else {
				metrics = append(metrics, map[string]any{"MetricName": a.Props["MetricName"], "Dimensions": a.Props["Dimensions"], "Namespace": a.Props["Namespace"]})
			}
			var names []string
			for _, m := range metrics {
				n := strOf(m["MetricName"])
				if !serviceMetricName.MatchString(n) {
					continue
				}
				names = append(names, n)
				if !served[n] || m["Namespace"] != "Aircraft/AircraftPlatform" {
					t.Errorf("%s: %s watches %s (%v), not a metric aircraftd serves into the stack's namespace", name, a.ID, n, m["Namespace"])
				}
				var dims []string
				for _, d := range list(m["Dimensions"]) {
					dims = append(dims, strOf(d.(map[string]any)["Name"]))
				}
				slices.Sort(dims)
				if !slices.ContainsFunc(pub[n], func(set []string) bool { s := slices.Sorted(slices.Values(set)); return slices.Equal(s, dims) }) {
					t.Errorf("%s: %s watches %s by %v; the agent publishes it by %v", name, a.ID, n, dims, pub[n])
				}
			}
			if len(names) == 0 {
				continue
			}
			got = append(got, a.ID)
			if jsonOf(a.Props["AlarmActions"]) != `[{"Ref":"`+topic+`"}]` || jsonOf(a.Props["OKActions"]) != `[{"Ref":"`+topic+`"}]` {
				t.Errorf("%s: %s does not notify the topic", name, a.ID)
			}
		}
		for _, want := range []string{"ServiceQuarantineRate", "ServiceIngestFailures", "ServiceDownloadFailureRate", "ServicePoolWaits", "ServiceMemory"} {
			if !slices.ContainsFunc(got, func(id string) bool { return strings.HasPrefix(id, "Monitoring"+want) }) {
				t.Errorf("%s: no alarm %s among %v", name, want, got)
			}
		}
	}
}

// tokensAsText flattens a {"Fn::Join": ["", [...]]} into text with every intrinsic in it as the word TOKEN.
func tokensAsText(v any) string {
	if j, ok := v.(map[string]any)["Fn::Join"].([]any); ok && len(j) == 2 {
		var b strings.Builder
		for _, part := range j[1].([]any) {
			if s, ok := part.(string); ok {
				b.WriteString(s)
			} else {
				b.WriteString("TOKEN")
			}
		}
		return b.String()
	}
	return strOf(v)
}
