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
	instance := []string{"AWS/EC2 StatusCheckFailed Maximum", "AWS/EC2 CPUCreditBalance Minimum"}
	fleet := []string{"AWS/ApplicationELB UnHealthyHostCount Maximum", "AWS/ApplicationELB HealthyHostCount Minimum",
		"AWS/ApplicationELB HTTPCode_ELB_5XX_Count Sum"}
	want := map[string][]string{
		"default":         slices.Concat(instance, data, docdb),
		"externalMongo":   slices.Concat(instance, data),
		"loadBalanced":    slices.Concat(fleet, data, docdb),
		"loadBalancedDNS": slices.Concat(fleet, data), // external MongoDB
	}
	for name, w := range want {
		s := stackOf(t, name)
		topic := s.One(t, "AWS::SNS::Topic").ID
		var got []string
		for _, a := range s.Resources("AWS::CloudWatch::Alarm") {
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
