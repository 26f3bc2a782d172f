package diagram

import (
	"fmt"
	"sort"
	"strings"
)

// networkArrows draws every ingress rule: from the internet (a CIDR) or from another security group's owner.
func (d *drawing) networkArrows() {
	type arrow struct{ from, to, label string }
	var arrows []arrow
	addRule := func(group string, r map[string]any) {
		to := d.sgOwner[group]
		if to == "" {
			return
		}
		port := fmt.Sprintf("%v", r["FromPort"])
		if r["FromPort"] != r["ToPort"] {
			port = fmt.Sprintf("%v-%v", r["FromPort"], r["ToPort"])
		}
		label := fmt.Sprintf("%s %s", r["IpProtocol"], port)
		if cidr, ok := r["CidrIp"].(string); ok {
			arrows = append(arrows, arrow{"client", to, label + " from " + cidr})
		} else if src := getAttID(r["SourceSecurityGroupId"]); src != "" && d.sgOwner[src] != "" {
			arrows = append(arrows, arrow{d.sgOwner[src], to, label})
		}
	}
	for _, sg := range d.t.resources("AWS::EC2::SecurityGroup") {
		for _, r := range asList(sg.props["SecurityGroupIngress"]) {
			addRule(sg.id, r.(map[string]any))
		}
	}
	for _, r := range d.t.resources("AWS::EC2::SecurityGroupIngress") {
		addRule(getAttID(r.props["GroupId"]), r.props)
	}
	// Egress to the internet (CIDR rules): AWS APIs, package mirrors, ACME.
	for _, sg := range d.t.resources("AWS::EC2::SecurityGroup") {
		for _, r := range asList(sg.props["SecurityGroupEgress"]) {
			r := r.(map[string]any)
			if cidr, ok := r["CidrIp"].(string); ok && cidr == "0.0.0.0/0" && d.sgOwner[sg.id] != "" {
				if owner := d.sgOwner[sg.id]; d.isolated[owner] && d.s3Endpoint != "" {
					arrows = append(arrows, arrow{owner, d.s3Endpoint, fmt.Sprintf("%s %v (the only route out)", r["IpProtocol"], r["FromPort"])})
					continue
				}
				arrows = append(arrows, arrow{d.sgOwner[sg.id], "internet", fmt.Sprintf("%s %v to %s", r["IpProtocol"], r["FromPort"], cidr)})
			}
		}
	}
	// one arrow per pair, ports joined
	merged := map[[2]string][]string{}
	var order [][2]string
	for _, a := range arrows {
		k := [2]string{a.from, a.to}
		if _, ok := merged[k]; !ok {
			order = append(order, k)
		}
		merged[k] = append(merged[k], a.label)
	}
	sort.Slice(order, func(i, j int) bool { return order[i][0]+order[i][1] < order[j][0]+order[j][1] })
	for _, k := range order {
		labels := merged[k]
		sort.Strings(labels)
		d.add(`%s -- "%s" --> %s`, k[0], strings.Join(labels, "; "), k[1])
	}
}

// permissionArrows draws what the instance role may do, grouped by target resource.
func (d *drawing) permissionArrows() {
	if d.role == "" {
		return
	}
	perms := map[string]map[string]bool{}
	for _, p := range d.t.resources("AWS::IAM::Policy") {
		attached := false
		for _, r := range asList(p.props["Roles"]) {
			attached = attached || r.(map[string]any)["Ref"] == d.role
		}
		if !attached {
			continue
		}
		doc, _ := p.props["PolicyDocument"].(map[string]any)
		for _, st := range asList(doc["Statement"]) {
			st := st.(map[string]any)
			for _, res := range asList(st["Resource"]) {
				target := d.nodes[firstRef(res)]
				if target == "" {
					continue
				}
				if perms[target] == nil {
					perms[target] = map[string]bool{}
				}
				for _, a := range asList(st["Action"]) {
					perms[target][fmt.Sprint(a)] = true
				}
			}
		}
	}
	targets := make([]string, 0, len(perms))
	for t := range perms {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	for _, target := range targets {
		d.add(`%s -. "%s" .-> %s`, d.roleOf, summarize(perms[target]), target)
	}
}

// summarize names a set of actions by service and verb, e.g. "s3: Get*, List* (read-only)".
func summarize(actions map[string]bool) string {
	byService := map[string][]string{}
	readOnly := true
	for a := range actions {
		svc, verb, _ := strings.Cut(a, ":")
		byService[svc] = append(byService[svc], verb)
		if !strings.HasPrefix(verb, "Get") && !strings.HasPrefix(verb, "List") && !strings.HasPrefix(verb, "Describe") {
			readOnly = false
		}
	}
	var parts []string
	for svc, verbs := range byService {
		sort.Strings(verbs)
		parts = append(parts, svc+": "+strings.Join(verbs, ", "))
	}
	sort.Strings(parts)
	s := strings.Join(parts, "; ")
	if readOnly {
		s += " (read-only)"
	}
	return s
}
