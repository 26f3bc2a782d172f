package main

import (
	"slices"
	"strings"
	"testing"
)

// Every configuration has its alarms, each notifying the topic when it fires and when it recovers: the single
// instance's on its status and CPU credits, the fleet's on the load balancer's targets and 5xx instead; the database
// and service 5xx alarms in both; DocumentDB's only when the stack has DocumentDB.
func TestAlarmsInEveryMode(t *testing.T) {
	data := []string{"AWS/RDS FreeStorageSpace Minimum", "AWS/RDS CPUUtilization Average", "Aircraft/* ServerErrors Sum"}
	docdb := []string{"AWS/DocDB CPUUtilization Average", "AWS/DocDB FreeableMemory Minimum"}
	instance := []string{"AWS/EC2 StatusCheckFailed Maximum", "AWS/EC2 CPUCreditBalance Minimum", "Aircraft/* disk_free Minimum"}
	fleet := []string{"AWS/ApplicationELB UnHealthyHostCount Maximum", "AWS/ApplicationELB HealthyHostCount Minimum",
		"AWS/ApplicationELB HTTPCode_ELB_5XX_Count Sum"}
	// The ingestion pipeline's (on by default): backfills ending badly, live ingestion's dead letters, the worker, the
	// database's connections.
	pipeline := []string{"AWS/States ExecutionsFailed Sum", "AWS/States ExecutionsTimedOut Sum", "AWS/States ExecutionsAborted Sum",
		"AWS/SQS ApproximateNumberOfMessagesVisible Maximum", "AWS/Lambda Errors Sum", "AWS/Lambda Throttles Sum",
		"AWS/RDS DatabaseConnections Maximum"}
	want := map[string][]string{
		"default":         slices.Concat(instance, data, docdb, pipeline),
		"externalMongo":   slices.Concat(instance, data, pipeline),
		"loadBalanced":    slices.Concat(fleet, data, docdb, pipeline),
		"loadBalancedDNS": slices.Concat(fleet, data, pipeline), // external MongoDB
	}
	for name, w := range want {
		s := stackOf(t, name)
		topic := s.One(t, "AWS::SNS::Topic").ID
		var got []string
		for _, a := range s.Resources("AWS::CloudWatch::Alarm") {
			if strings.HasPrefix(a.ID, "Monitoring") {
				continue // on the service's own metrics: TestServiceAlarmsWatchPublishedMetrics
			}
			ns := a.Props["Namespace"].(string)
			if strings.HasPrefix(ns, "Aircraft/") {
				ns = "Aircraft/*"
			}
			got = append(got, ns+" "+a.Props["MetricName"].(string)+" "+a.Props["Statistic"].(string))
			for _, actions := range []string{"AlarmActions", "OKActions"} {
				if as := list(a.Props[actions]); len(as) != 1 || jsonOf(as[0]) != `{"Ref":"`+topic+`"}` {
					t.Errorf("%s: %s %s: %s, want the topic", name, a.ID, actions, jsonOf(a.Props[actions]))
				}
			}
			if ns == "AWS/ApplicationELB" {
				of := s.One(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").ID // HTTPCode_ELB_5XX_Count
				if strings.HasSuffix(a.Props["MetricName"].(string), "HostCount") {
					of = s.One(t, "AWS::ElasticLoadBalancingV2::TargetGroup").ID
				}
				if !strings.Contains(jsonOf(a.Props["Dimensions"]), `"`+of+`"`) {
					t.Errorf("%s: %s is not of %s: %s", name, a.ID, of, jsonOf(a.Props["Dimensions"]))
				}
			}
		}
		slices.Sort(got)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("%s: alarms\n%s\nwant\n%s", name, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}
}

// The root volume's alarm fires before aircraftd's free-space guard refuses downloads, on the agent's per-instance
// series, which the agent may publish into the stack's namespace only.
func TestDiskAlarmWarnsBeforeTheServiceRefuses(t *testing.T) {
	s := stackOf(t, "default")
	inst := s.One(t, "AWS::EC2::Instance")
	var disk *Resource
	for _, a := range s.Resources("AWS::CloudWatch::Alarm") {
		if a.Props["MetricName"] == "disk_free" {
			disk = &a
		}
	}
	if disk == nil {
		t.Fatal("no disk alarm")
	}
	const gib = 1 << 30
	if disk.Props["Namespace"] != "Aircraft/AircraftPlatform" || disk.Props["Threshold"] != float64(2*gib) ||
		disk.Props["ComparisonOperator"] != "LessThanThreshold" || jsonOf(disk.Props["Dimensions"]) != `[{"Name":"InstanceId","Value":{"Ref":"`+inst.ID+`"}}]` {
		t.Errorf("disk alarm %s", jsonOf(disk.Props))
	}
	// The agent reports free bytes of / per instance into that namespace.
	files, _, _ := initConfig(t, s, "app")
	var agent string
	for path, f := range files {
		if strings.HasSuffix(path, "amazon-cloudwatch-agent/etc/aircraft.json") {
			agent = jsonOf(f["content"])
		}
	}
	for _, want := range []string{`"namespace":"Aircraft/AircraftPlatform"`, `"aggregation_dimensions":[["InstanceId"]]`, `"measurement":["free"]`, `"resources":["/"]`} {
		if !strings.Contains(agent, want) {
			t.Errorf("agent config lacks %s: %s", want, agent)
		}
	}
	if !strings.Contains(jsonOf(s.Resources("AWS::IAM::Policy")), `"Action":"cloudwatch:PutMetricData","Condition":{"StringEquals":{"cloudwatch:namespace":"Aircraft/AircraftPlatform"}}`) {
		t.Error("PutMetricData is not limited to the stack's namespace")
	}
}
