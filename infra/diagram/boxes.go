package diagram

import (
	"fmt"
	"sort"
	"strings"
)

// boxes draws every resource the picture shows: the VPC and its subnets, then the regional services.
func (d *drawing) boxes() {
	d.nodes = map[string]string{}
	d.add(`client(["Clients"])`)
	d.add(`subgraph aws["AWS Cloud (region of the deploy)"]`)
	for _, vpc := range d.t.resources("AWS::EC2::VPC") {
		d.vpc(vpc)
	}
	d.buckets()
	d.pipeline()
	d.regionalServices()
	d.add(`end`)
	d.add(`internet(("Internet: AWS APIs, dnf, ACME"))`)
	d.lines = append(d.lines, d.s3Routes...)
}

// vpc draws a VPC: its public subnets with what serves, its isolated subnets with the stores, its endpoints.
func (d *drawing) vpc(vpc resource) {
	d.add(`  subgraph vpc["VPC %s"]`, vpc.props["CidrBlock"])
	public, isolated := 0, 0
	for _, sn := range d.t.resources("AWS::EC2::Subnet") {
		if sn.props["MapPublicIpOnLaunch"] == true {
			public++
		} else {
			isolated++
		}
	}
	d.add(`    subgraph public["Public subnets x%d"]`, public)
	d.instances()
	d.loadBalancers()
	d.groups()
	d.add(`    end`)
	d.add(`    subgraph isolated["Isolated subnets x%d, no route out"]`, isolated)
	d.databases()
	d.fileSystems()
	d.functions()
	d.add(`    end`)
	for i, ep := range d.t.resources("AWS::EC2::VPCEndpoint") {
		d.add(`    endpoint_%d{{"%s endpoint: %s"}}`, i, ep.props["VpcEndpointType"], serviceName(ep.props["ServiceName"]))
		if serviceName(ep.props["ServiceName"]) == "S3" {
			d.s3Endpoint = fmt.Sprintf("endpoint_%d", i)
		}
	}
	d.add(`  end`)
}

// instances draws the EC2 instances of the public subnets, and notes the role of their instance profile.
func (d *drawing) instances() {
	for i, inst := range d.t.resources("AWS::EC2::Instance") {
		node := fmt.Sprintf("ec2_%d", i)
		label := fmt.Sprintf("EC2 %s<br/>%s", inst.props["InstanceType"], imageName(inst.props["ImageId"]))
		if len(d.t.resources("AWS::EC2::EIP")) > 0 {
			label += "<br/>Elastic IP"
		}
		if md, _ := inst.props["MetadataOptions"].(map[string]any); md["HttpTokens"] == "required" {
			label += ", IMDSv2"
		}
		d.add(`      %s["%s<br/>aircraftd (systemd)"]`, node, label)
		for _, g := range append(refs(inst.props["SecurityGroupIds"]), groupIDs(inst.props["NetworkInterfaces"], "GroupSet")...) {
			d.sgOwner[g] = node
		}
		if profile, ok := inst.props["IamInstanceProfile"].(map[string]any); ok {
			for _, p := range d.t.resources("AWS::IAM::InstanceProfile") {
				if p.id == profile["Ref"] {
					for _, r := range asList(p.props["Roles"]) {
						d.role, _ = r.(map[string]any)["Ref"].(string)
						d.roleOf = node
					}
				}
			}
		}
	}
}

// databases draws RDS and DocumentDB in the isolated subnets.
func (d *drawing) databases() {
	for i, db := range d.t.resources("AWS::RDS::DBInstance") {
		node := fmt.Sprintf("rds_%d", i)
		d.add(`      %s[("RDS %s %s<br/>%s, %s GiB %s%s<br/>%s")]`, node, db.props["Engine"], db.props["DBInstanceClass"],
			db.props["DBName"], db.props["AllocatedStorage"], db.props["StorageType"], encrypted(db.props["StorageEncrypted"]),
			multiAZ(db.props["MultiAZ"]))
		for _, g := range refs(db.props["VPCSecurityGroups"]) {
			d.sgOwner[g] = node
		}
	}
	for i, c := range d.t.resources("AWS::DocDB::DBCluster") {
		node := fmt.Sprintf("docdb_%d", i)
		classes := []string{}
		for _, inst := range d.t.resources("AWS::DocDB::DBInstance") {
			classes = append(classes, fmt.Sprint(inst.props["DBInstanceClass"]))
		}
		d.add(`      %s[("DocumentDB %s<br/>%d instance(s) %s%s, TLS")]`, node, c.props["EngineVersion"], len(classes),
			strings.Join(unique(classes), ","), encrypted(c.props["StorageEncrypted"]))
		for _, g := range refs(c.props["VpcSecurityGroupIds"]) {
			d.sgOwner[g] = node
		}
	}
}

// functions draws the Lambda functions of the isolated subnets (those in the VPC; the CDK's deploy-time handlers are
// not), with their memory, timeout and reserved concurrency.
func (d *drawing) functions() {
	i := 0
	for _, fn := range d.t.resources("AWS::Lambda::Function") {
		vpc, ok := fn.props["VpcConfig"].(map[string]any)
		if !ok {
			continue
		}
		node := fmt.Sprintf("lambda_%d", i)
		i++
		label := fmt.Sprintf("Lambda %v %s, %v MB, %v s", fn.props["Runtime"], strings.Join(strs(fn.props["Architectures"]), ","),
			fn.props["MemorySize"], fn.props["Timeout"])
		if n, ok := fn.props["ReservedConcurrentExecutions"]; ok {
			label += fmt.Sprintf(", %v at once", n)
		}
		d.add(`      %s["%s<br/>ingest worker"]`, node, label)
		d.nodes[fn.id] = node
		d.isolated[node] = true
		for _, g := range groupRefs(vpc["SecurityGroupIds"]) {
			d.sgOwner[g] = node
		}
	}
}

// strs is a list of strings.
func strs(v any) []string {
	var out []string
	for _, s := range asList(v) {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// groupRefs are the logical ids of {"Fn::GetAtt": [id, "GroupId"]} values.
func groupRefs(v any) []string {
	var out []string
	for _, g := range asList(v) {
		if id := getAttID(g); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// pipeline draws the state machines and the queues outside the VPC, with what starts what: the bucket's notifications
// to a queue, a queue's event source to a function, a state machine's listing of a bucket, its invocations of a
// function and its result files.
func (d *drawing) pipeline() {
	for i, q := range d.t.resources("AWS::SQS::Queue") {
		node := fmt.Sprintf("sqs_%d", i)
		d.nodes[q.id] = node
		label := "SQS queue"
		if r, ok := q.props["RedrivePolicy"].(map[string]any); ok {
			label += fmt.Sprintf(", visibility %v s<br/>dead letters after %v deliveries", q.props["VisibilityTimeout"], r["maxReceiveCount"])
		} else {
			label += " (dead letters)"
		}
		if q.props["SqsManagedSseEnabled"] == true {
			label += ", encrypted"
		}
		d.add(`  %s[["%s"]]`, node, label)
	}
	for _, q := range d.t.resources("AWS::SQS::Queue") {
		if r, ok := q.props["RedrivePolicy"].(map[string]any); ok && d.nodes[getAttID(r["deadLetterTargetArn"])] != "" {
			d.add(`  %s -- "dead letters" --> %s`, d.nodes[q.id], d.nodes[getAttID(r["deadLetterTargetArn"])])
		}
	}
	for _, n := range d.t.resources("Custom::S3BucketNotifications") {
		cfg, _ := n.props["NotificationConfiguration"].(map[string]any)
		for _, qc := range asList(cfg["QueueConfigurations"]) {
			qc := qc.(map[string]any)
			if from, to := d.nodes[ref(n.props["BucketName"])], d.nodes[getAttID(qc["QueueArn"])]; from != "" && to != "" {
				d.add(`  %s -- "%s" --> %s`, from, strings.Join(strs(qc["Events"]), ", "), to)
			}
		}
	}
	for _, m := range d.t.resources("AWS::Lambda::EventSourceMapping") {
		from, to := d.nodes[getAttID(m.props["EventSourceArn"])], d.nodes[ref(m.props["FunctionName"])]
		if from != "" && to != "" {
			d.add(`  %s -- "batches of %v within %v s, at most %v at once" --> %s`, from, m.props["BatchSize"],
				m.props["MaximumBatchingWindowInSeconds"], maxConcurrency(m.props["ScalingConfig"]), to)
		}
	}
	for i, sm := range d.t.resources("AWS::StepFunctions::StateMachine") {
		node := fmt.Sprintf("sfn_%d", i)
		d.nodes[sm.id] = node
		d.add(`  %s{{"Step Functions %v<br/>%v: Distributed Map over the bucket listing"}}`, node, sm.props["StateMachineType"], sm.props["StateMachineName"])
		def := joined(sm.props["DefinitionString"])
		ids := make([]string, 0, len(d.nodes))
		for id := range d.nodes {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			target := d.nodes[id]
			if !strings.Contains(def, "{"+id+"}") && !strings.Contains(def, "{"+id+".Arn}") {
				continue
			}
			switch {
			case strings.HasPrefix(target, "lambda_"):
				d.add(`  %s -- "invokes, one batch each" --> %s`, node, target)
			case strings.HasPrefix(target, "s3_") && strings.Contains(def, "s3:listObjectsV2\",\"Parameters\":{\"Bucket\":\"${"+id+"}"):
				d.add(`  %s -- "ListObjectsV2" --> %s`, node, target)
			case strings.HasPrefix(target, "s3_"):
				d.add(`  %s -- "result files" --> %s`, node, target)
			}
		}
	}
}

// maxConcurrency is the MaximumConcurrency of an event source's scaling configuration.
func maxConcurrency(v any) any {
	m, _ := v.(map[string]any)
	return m["MaximumConcurrency"]
}

// joined is a string or a {"Fn::Join": ["", [...]]} as text, references as ${id} and ${id.Attribute}.
func joined(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if j, ok := v["Fn::Join"].([]any); ok && len(j) == 2 {
			var b strings.Builder
			for _, part := range asList(j[1]) {
				b.WriteString(joined(part))
			}
			return b.String()
		}
		if r, ok := v["Ref"].(string); ok {
			return "${" + r + "}"
		}
		if ga, ok := v["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
			return fmt.Sprintf("${%v.%v}", ga[0], ga[1])
		}
	}
	return ""
}

// buckets draws the S3 buckets, with the routes to them: the S3 endpoint's, the load balancers' access logs.
func (d *drawing) buckets() {
	for i, b := range d.t.resources("AWS::S3::Bucket") {
		node := fmt.Sprintf("s3_%d", i)
		name := "generated name"
		if n, ok := b.props["BucketName"].(string); ok {
			name = n
		}
		versioning := ""
		if v, _ := b.props["VersioningConfiguration"].(map[string]any); v["Status"] == "Enabled" {
			versioning = ", versioned"
		}
		expiry := ""
		lc, _ := b.props["LifecycleConfiguration"].(map[string]any)
		for _, r := range asList(lc["Rules"]) {
			if days, ok := r.(map[string]any)["ExpirationInDays"]; ok {
				expiry = fmt.Sprintf(", objects expire after %v days", days)
			}
		}
		d.add(`  %s[("S3 bucket (%s)<br/>private%s, TLS only%s")]`, node, name, versioning, expiry)
		d.nodes[b.id] = node
		for _, lb := range d.albLogBuckets {
			if lb.bucket == b.id {
				d.s3Routes = append(d.s3Routes, fmt.Sprintf(`%s -- "access logs" --> %s`, lb.node, node))
			}
		}
		if d.s3Endpoint != "" {
			d.s3Routes = append(d.s3Routes, fmt.Sprintf(`%s -- "S3 traffic stays in AWS" --- %s`, d.s3Endpoint, node))
		}
	}
}

// regionalServices draws the services outside the VPC: secrets, parameters, logs, DNS records, alarms.
func (d *drawing) regionalServices() {
	if secrets := d.t.resources("AWS::SecretsManager::Secret"); len(secrets) > 0 {
		d.add(`  secrets["Secrets Manager<br/>%d generated secrets"]`, len(secrets))
		for _, s := range secrets {
			d.nodes[s.id] = "secrets"
		}
		for _, a := range d.t.resources("AWS::SecretsManager::SecretTargetAttachment") {
			d.nodes[a.id] = "secrets"
		}
	}
	for i, p := range d.t.resources("AWS::SSM::Parameter") {
		d.add(`  ssm_%d["SSM parameter<br/>%s"]`, i, p.props["Name"])
		d.nodes[p.id] = fmt.Sprintf("ssm_%d", i)
	}
	for i, lg := range d.t.resources("AWS::Logs::LogGroup") {
		name, ok := lg.props["LogGroupName"].(string)
		if !ok {
			name = "generated name"
		}
		d.add(`  logs_%d["CloudWatch Logs<br/>%s, %v days"]`, i, name, lg.props["RetentionInDays"])
		d.nodes[lg.id] = fmt.Sprintf("logs_%d", i)
	}
	for i, r := range d.t.resources("AWS::Route53::RecordSet") {
		d.add(`  dns_%d["Route 53 %s %s"]`, i, r.props["Type"], r.props["Name"])
	}
	if alarms := d.t.resources("AWS::CloudWatch::Alarm"); len(alarms) > 0 {
		d.add(`  alarms["CloudWatch alarms x%d<br/>%s"]`, len(alarms), watched(alarms))
		for i, topic := range d.t.resources("AWS::SNS::Topic") {
			d.add(`  sns_%d["SNS topic<br/>alarm notifications (e-mail)"]`, i)
			d.add(`  alarms --> sns_%d`, i)
			d.nodes[topic.id] = fmt.Sprintf("sns_%d", i)
		}
	}
}

// loadBalancers draws the Application Load Balancers of the public subnets, with their listeners.
func (d *drawing) loadBalancers() {
	for i, lb := range d.t.resources("AWS::ElasticLoadBalancingV2::LoadBalancer") {
		node := fmt.Sprintf("alb_%d", i)
		var listeners []string
		for _, l := range d.t.resources("AWS::ElasticLoadBalancingV2::Listener") {
			if ref(l.props["LoadBalancerArn"]) != lb.id {
				continue
			}
			what := "forward"
			for _, a := range asList(l.props["DefaultActions"]) {
				if a.(map[string]any)["Type"] == "redirect" {
					what = "redirect to HTTPS"
				}
			}
			if l.props["Certificates"] != nil {
				what += ", ACM certificate"
			}
			listeners = append(listeners, fmt.Sprintf("%v %v: %s", l.props["Protocol"], l.props["Port"], what))
		}
		sort.Strings(listeners)
		d.add(`      %s["Application Load Balancer (%s)<br/>%s"]`, node, lb.props["Scheme"], strings.Join(listeners, "<br/>"))
		for _, g := range refs(lb.props["SecurityGroups"]) {
			d.sgOwner[g] = node
		}
		for _, a := range asList(lb.props["LoadBalancerAttributes"]) {
			if a := a.(map[string]any); a["Key"] == "access_logs.s3.bucket" {
				d.albLogBuckets = append(d.albLogBuckets, struct{ node, bucket string }{node, ref(a["Value"])})
			}
		}
	}
}

// groups draws the Auto Scaling groups and what their launch template starts.
func (d *drawing) groups() {
	for i, g := range d.t.resources("AWS::AutoScaling::AutoScalingGroup") {
		node := fmt.Sprintf("asg_%d", i)
		lt, _ := g.props["LaunchTemplate"].(map[string]any)
		for _, t := range d.t.resources("AWS::EC2::LaunchTemplate") {
			if t.id != ref(lt["LaunchTemplateId"]) {
				continue
			}
			data, _ := t.props["LaunchTemplateData"].(map[string]any)
			label := fmt.Sprintf("Auto Scaling group: %v x EC2 %v (min %v, max %v)<br/>%s", g.props["DesiredCapacity"], data["InstanceType"],
				g.props["MinSize"], g.props["MaxSize"], imageName(data["ImageId"]))
			if md, _ := data["MetadataOptions"].(map[string]any); md["HttpTokens"] == "required" {
				label += ", IMDSv2"
			}
			if roll, ok := d.rollingUpdate(g.id); ok {
				label += "<br/>" + roll
			}
			d.add(`      %s["%s<br/>aircraftd (systemd)"]`, node, label)
			for _, sg := range refs(data["SecurityGroupIds"]) {
				d.sgOwner[sg] = node
			}
			if profile, ok := data["IamInstanceProfile"].(map[string]any); ok {
				for _, p := range d.t.resources("AWS::IAM::InstanceProfile") {
					if p.id == getAttID(profile["Arn"]) {
						for _, r := range asList(p.props["Roles"]) {
							d.role, _ = r.(map[string]any)["Ref"].(string)
							d.roleOf = node
						}
					}
				}
			}
		}
	}
}

// rollingUpdate describes the update policy of a group.
func (d *drawing) rollingUpdate(id string) (string, bool) {
	rs, _ := d.t["Resources"].(map[string]any)
	r, _ := rs[id].(map[string]any)
	policy, _ := r["UpdatePolicy"].(map[string]any)
	roll, ok := policy["AutoScalingRollingUpdate"].(map[string]any)
	if !ok {
		return "", false
	}
	return fmt.Sprintf("rolling release: %v at a time, %v in service", roll["MaxBatchSize"], roll["MinInstancesInService"]), true
}

// fileSystems draws the EFS file systems of the isolated subnets.
func (d *drawing) fileSystems() {
	for i, fs := range d.t.resources("AWS::EFS::FileSystem") {
		node := fmt.Sprintf("efs_%d", i)
		mounts, points := 0, []string{}
		for _, mt := range d.t.resources("AWS::EFS::MountTarget") {
			if ref(mt.props["FileSystemId"]) == fs.id {
				mounts++
				for _, g := range refs(mt.props["SecurityGroups"]) {
					d.sgOwner[g] = node
				}
			}
		}
		for _, ap := range d.t.resources("AWS::EFS::AccessPoint") {
			if ref(ap.props["FileSystemId"]) == fs.id {
				root, _ := ap.props["RootDirectory"].(map[string]any)
				points = append(points, fmt.Sprint(root["Path"]))
			}
		}
		d.add(`      %s[("EFS%s<br/>%d mount targets, access point %s")]`, node, encrypted(fs.props["Encrypted"]), mounts, strings.Join(points, ", "))
		d.nodes[fs.id] = node
	}
}
