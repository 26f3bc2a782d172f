package diagram

import (
	"fmt"
	"sort"
	"strings"
)

func imageName(v any) string {
	s := fmt.Sprint(v)
	switch {
	case strings.Contains(s, "al2023"):
		return "Amazon Linux 2023"
	case strings.Contains(s, "amzn2"):
		return "Amazon Linux 2"
	}
	return "AMI"
}

func serviceName(v any) string {
	s := fmt.Sprintf("%v", v)
	if strings.Contains(s, ".s3") {
		return "S3"
	}
	return s
}

func encrypted(v any) string {
	if v == true {
		return ", encrypted"
	}
	return ", NOT encrypted"
}

func multiAZ(v any) string {
	if v == true {
		return "Multi-AZ"
	}
	return "single-AZ"
}

func asList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	}
	return []any{v}
}

// ref returns the logical id of {"Ref": id}.
func ref(v any) string {
	m, _ := v.(map[string]any)
	r, _ := m["Ref"].(string)
	return r
}

func getAttID(v any) string {
	m, _ := v.(map[string]any)
	ga, _ := m["Fn::GetAtt"].([]any)
	if len(ga) > 0 {
		return fmt.Sprint(ga[0])
	}
	return ""
}

func refs(v any) []string {
	var out []string
	for _, x := range asList(v) {
		if id := getAttID(x); id != "" {
			out = append(out, id)
		}
	}
	return out
}

func groupIDs(nis any, key string) []string {
	var out []string
	for _, ni := range asList(nis) {
		m, _ := ni.(map[string]any)
		out = append(out, refs(m[key])...)
	}
	return out
}

// firstRef returns the logical id of the first Ref or GetAtt inside v (an ARN built with Fn::Join, say).
func firstRef(v any) string {
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["Ref"].(string); ok {
			return r
		}
		if id := getAttID(v); id != "" {
			return id
		}
		for _, k := range []string{"Fn::Join", "Fn::Sub"} {
			if x, ok := v[k]; ok {
				return firstRef(x)
			}
		}
	case []any:
		for _, x := range v {
			if id := firstRef(x); id != "" && !strings.HasPrefix(id, "AWS::") {
				return id
			}
		}
	}
	return ""
}

func unique(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// watched names what alarms watch, from their metrics' namespaces.
func watched(alarms []resource) string {
	seen := map[string]bool{}
	for _, a := range alarms {
		ns, _ := a.props["Namespace"].(string)
		seen[ns] = true
		if !strings.HasPrefix(ns, "AWS/") {
			seen["custom"] = true // the service's 5xx, from its log
		}
	}
	var names []string
	for _, w := range []struct{ ns, name string }{
		{"AWS/EC2", "instance"}, {"AWS/ApplicationELB", "load balancer"}, {"AWS/RDS", "RDS"}, {"AWS/DocDB", "DocumentDB"}, {"custom", "5xx"},
		{"AWS/States", "backfills"}, {"AWS/SQS", "dead letters"}, {"AWS/Lambda", "worker"},
	} {
		if seen[w.ns] {
			names = append(names, w.name)
		}
	}
	return strings.Join(names, ", ")
}
