package main

// The load-balanced mode (-c instances=N): listeners, certificate, health check, the security group chain, the shared
// download folder on EFS, the fleet's IAM, and releases that roll one instance at a time behind a gate.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/fleet"
	"github.com/aircraftdata/platform/infra/host"
)

// fleetEnv is aircraftd.env on a fleet instance.
func fleetEnv(t *testing.T, s *Synth) map[string]string {
	t.Helper()
	files, _, _ := initConfig(t, s, "install")
	env := map[string]string{}
	for _, line := range strings.Split(joinedText(files[host.ServiceEnvPath]["content"]), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	return env
}

func (s *Synth) groupOf(t testing.TB, typ, key string) string {
	t.Helper()
	r := s.One(t, typ)
	var v any
	if typ == "AWS::EC2::LaunchTemplate" {
		v = r.Props["LaunchTemplateData"].(map[string]any)[key]
	} else {
		v = r.Props[key]
	}
	groups := list(v)
	if len(groups) != 1 {
		t.Fatalf("%s has security groups %v, want one", typ, groups)
	}
	return fmt.Sprint(groups[0].(map[string]any)["Fn::GetAtt"].([]any)[0])
}

func (s *Synth) albSG(t testing.TB) string {
	return s.groupOf(t, "AWS::ElasticLoadBalancingV2::LoadBalancer", "SecurityGroups")
}
func (s *Synth) fleetSG(t testing.TB) string {
	return s.groupOf(t, "AWS::EC2::LaunchTemplate", "SecurityGroupIds")
}
func (s *Synth) efsSG(t testing.TB) string {
	mts := s.Resources("AWS::EFS::MountTarget")
	if len(mts) == 0 {
		t.Fatal("no mount targets")
	}
	return fmt.Sprint(list(mts[0].Props["SecurityGroups"])[0].(map[string]any)["Fn::GetAtt"].([]any)[0])
}

// ruleSet renders rules as sorted "proto/from-to/peer-or-cidr" strings.
func ruleSet(rules []sgRule) []string {
	var out []string
	for _, r := range rules {
		to := r.Cidr
		if r.Peer != "" {
			to = r.Peer
		}
		out = append(out, fmt.Sprintf("%s/%v-%v/%s", r.Protocol, r.FromPort, r.ToPort, to))
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func TestLoadBalancedReplacesTheInstance(t *testing.T) {
	for _, name := range []string{"loadBalanced", "loadBalancedDNS"} {
		s := stackOf(t, name)
		for _, typ := range []string{"AWS::EC2::Instance", "AWS::EC2::EIP", "AWS::CloudFormation::WaitCondition", "AWS::SSM::Parameter"} {
			if n := len(s.Resources(typ)); n != 0 {
				t.Errorf("%s: %d %s (the single instance's)", name, n, typ)
			}
		}
		if n := len(s.Resources("AWS::ElasticLoadBalancingV2::LoadBalancer")); n != 1 {
			t.Errorf("%s: %d load balancers", name, n)
		}
		lb := s.One(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
		if lb.Props["Scheme"] != "internet-facing" || lb.Props["Type"] != "application" {
			t.Errorf("%s: load balancer %s", name, jsonOf(lb.Props))
		}
		for _, sn := range list(lb.Props["Subnets"]) {
			if !slices.Contains(s.subnets(true), fmt.Sprint(sn.(map[string]any)["Ref"])) {
				t.Errorf("%s: load balancer in %v, not a public subnet", name, sn)
			}
		}
	}
}

func TestLoadBalancedListeners(t *testing.T) {
	s := stackOf(t, "loadBalanced")
	byPort := map[float64]Resource{}
	for _, l := range s.Resources("AWS::ElasticLoadBalancingV2::Listener") {
		byPort[l.Props["Port"].(float64)] = l
	}
	if len(byPort) != 2 {
		t.Fatalf("listeners on %v, want 80 and 443", byPort)
	}
	http, https := byPort[80], byPort[443]
	if http.Props["Protocol"] != "HTTP" ||
		jsonOf(http.Props["DefaultActions"]) != `[{"RedirectConfig":{"Port":"443","Protocol":"HTTPS","StatusCode":"HTTP_301"},"Type":"redirect"}]` {
		t.Errorf("port 80 must only redirect to HTTPS: %s", jsonOf(http.Props))
	}
	if https.Props["Protocol"] != "HTTPS" || https.Props["SslPolicy"] != "ELBSecurityPolicy-TLS13-1-2-2021-06" {
		t.Errorf("port 443: %s", jsonOf(https.Props))
	}
	tg := s.One(t, "AWS::ElasticLoadBalancingV2::TargetGroup")
	actions := list(https.Props["DefaultActions"])
	if len(actions) != 1 || actions[0].(map[string]any)["Type"] != "forward" || !refTo(actions[0].(map[string]any)["TargetGroupArn"], tg.ID) {
		t.Errorf("port 443 does not forward to the fleet's target group: %s", jsonOf(actions))
	}
	group := s.One(t, "AWS::AutoScaling::AutoScalingGroup")
	if arns := list(group.Props["TargetGroupARNs"]); len(arns) != 1 || !refTo(arns[0], tg.ID) {
		t.Errorf("the group does not register with the target group: %v", arns)
	}
}

func TestLoadBalancedCertificate(t *testing.T) {
	t.Run("imported with certificateArn", func(t *testing.T) {
		s := stackOf(t, "loadBalanced")
		if n := len(s.Resources("AWS::CertificateManager::Certificate")); n != 0 {
			t.Errorf("%d certificates made with certificateArn", n)
		}
		check(t, func() {
			s.Assertions().HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::Listener"), map[string]any{
				"Port": 443, "Certificates": []any{map[string]any{"CertificateArn": testCertArn}},
			})
		})
		if u := joinedText(s.Output("ApiUrl")); u != "https://${"+s.One(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").ID+".DNSName}" {
			t.Errorf("ApiUrl %s: want the load balancer's name", u)
		}
		if len(s.Resources("AWS::Route53::RecordSet")) != 0 {
			t.Error("a DNS record without a domain")
		}
	})
	t.Run("DNS-validated for domainName in hostedZoneId", func(t *testing.T) {
		s := stackOf(t, "loadBalancedDNS")
		cert := s.One(t, "AWS::CertificateManager::Certificate")
		if cert.Props["DomainName"] != "api.aircraft.example.com" || cert.Props["ValidationMethod"] != "DNS" ||
			jsonOf(cert.Props["DomainValidationOptions"]) != `[{"DomainName":"api.aircraft.example.com","HostedZoneId":"Z0123456789ABCDEFGHIJ"}]` {
			t.Errorf("certificate %s", jsonOf(cert.Props))
		}
		check(t, func() {
			s.Assertions().HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::Listener"), map[string]any{
				"Port": 443, "Certificates": []any{map[string]any{"CertificateArn": map[string]any{"Ref": cert.ID}}},
			})
		})
		rec := s.One(t, "AWS::Route53::RecordSet")
		lb := s.One(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
		alias, _ := rec.Props["AliasTarget"].(map[string]any)
		if rec.Props["Name"] != "api.aircraft.example.com." || rec.Props["Type"] != "A" || rec.Props["HostedZoneId"] != "Z0123456789ABCDEFGHIJ" ||
			!refTo(alias["DNSName"], lb.ID) || !refTo(alias["HostedZoneId"], lb.ID) {
			t.Errorf("DNS record %s: want an alias of the load balancer", jsonOf(rec.Props))
		}
		if s.Output("ApiUrl") != "https://api.aircraft.example.com" {
			t.Errorf("ApiUrl %v", s.Output("ApiUrl"))
		}
	})
}

func TestLoadBalancedHealthCheckAndDraining(t *testing.T) {
	s := stackOf(t, "loadBalanced")
	tg := s.One(t, "AWS::ElasticLoadBalancingV2::TargetGroup")
	if tg.Props["HealthCheckPath"] != "/api/v1/ready" || tg.Props["HealthCheckProtocol"] != "HTTPS" ||
		jsonOf(tg.Props["Matcher"]) != `{"HttpCode":"200"}` || tg.Props["Protocol"] != "HTTPS" || tg.Props["Port"] != float64(443) {
		t.Errorf("target group %s", jsonOf(tg.Props))
	}
	attrs := map[string]string{}
	for _, a := range list(tg.Props["TargetGroupAttributes"]) {
		attrs[fmt.Sprint(a.(map[string]any)["Key"])] = fmt.Sprint(a.(map[string]any)["Value"])
	}
	delay, _ := strconv.Atoi(attrs["deregistration_delay.timeout_seconds"])
	// The service's drain time, as the instances are told it.
	grace, err := strconv.Atoi(fleetEnv(t, s)["SHUTDOWN_GRACE_SECONDS"])
	if err != nil || grace < 1 {
		t.Fatalf("SHUTDOWN_GRACE_SECONDS on the fleet: %v", err)
	}
	if delay < grace {
		t.Errorf("deregistration delay %d s < the service's drain time %d s", delay, grace)
	}
	// The release gate checks the same endpoint as the load balancer.
	if !strings.Contains(fleet.FleetbootFile("aircraft-ready.sh"), "https://127.0.0.1"+tg.Props["HealthCheckPath"].(string)) {
		t.Error("the release gate does not check the target group's health check path")
	}
	env := fleetEnv(t, s)
	if env["HTTP_ADDR"] != ":443" || env["REDIRECT_ADDR"] != "" || env["TLS_CERT_FILE"] != "" || env["ACME_DOMAIN"] != "" || env["TLS_DISABLE"] != "" {
		t.Errorf("the fleet serves HTTPS on 443 only, with its in-memory certificate: %v", env)
	}
}

func TestLoadBalancedSecurityGroupChain(t *testing.T) {
	for _, name := range []string{"loadBalanced", "loadBalancedDNS"} {
		t.Run(name, func(t *testing.T) {
			s := stackOf(t, name)
			cidr := s.Config.AllowedCidr
			alb, fleet, efs, db := s.albSG(t), s.fleetSG(t), s.efsSG(t), s.databaseSG(t)
			if got, want := ruleSet(s.rulesOf(alb, "ingress")), sorted("tcp/443-443/"+cidr, "tcp/80-80/"+cidr); !slices.Equal(got, want) {
				t.Errorf("load balancer ingress %v, want %v", got, want)
			}
			if got, want := ruleSet(s.rulesOf(alb, "egress")), []string{"tcp/443-443/" + fleet}; !slices.Equal(got, want) {
				t.Errorf("load balancer egress %v, want %v", got, want)
			}
			if got, want := ruleSet(s.rulesOf(fleet, "ingress")), []string{"tcp/443-443/" + alb}; !slices.Equal(got, want) {
				t.Errorf("fleet ingress %v, want only the load balancer: %v", got, want)
			}
			mongo := "tcp/27017-27017/" + s.Config.MongoCidr // external MongoDB: its network only
			if !s.Config.ExternalMongo() {
				mongo = "tcp/27017-27017/" + s.docdbSG(t)
			}
			want := sorted("tcp/443-443/0.0.0.0/0", "tcp/5432-5432/"+db, "tcp/2049-2049/"+efs, mongo)
			if got := ruleSet(s.rulesOf(fleet, "egress")); !slices.Equal(got, want) {
				t.Errorf("fleet egress %v, want %v", got, want)
			}
			if got, want := ruleSet(s.notFromWorker(s.rulesOf(db, "ingress"))), []string{"tcp/5432-5432/" + fleet}; !slices.Equal(got, want) {
				t.Errorf("database ingress %v, want %v", got, want)
			}
			if got, want := ruleSet(s.rulesOf(efs, "ingress")), []string{"tcp/2049-2049/" + fleet}; !slices.Equal(got, want) {
				t.Errorf("EFS ingress %v, want %v", got, want)
			}
			if out := s.rulesOf(efs, "egress"); len(out) != 0 {
				t.Errorf("EFS egress %v", out)
			}
		})
	}
}

func TestLoadBalancedSharedDownloadsOnEFS(t *testing.T) {
	s := stackOf(t, "loadBalanced")
	fs := s.One(t, "AWS::EFS::FileSystem")
	if fs.Props["Encrypted"] != true {
		t.Error("the file system is not encrypted")
	}
	mts := s.Resources("AWS::EFS::MountTarget")
	if len(mts) != 2 {
		t.Fatalf("%d mount targets, want one per AZ", len(mts))
	}
	var subnets []any
	for _, mt := range mts {
		if !refTo(mt.Props["FileSystemId"], fs.ID) {
			t.Errorf("%s is not a mount target of the file system", mt.ID)
		}
		subnets = append(subnets, mt.Props["SubnetId"])
	}
	assertIsolatedSubnets(t, s, subnets)
	ap := s.One(t, "AWS::EFS::AccessPoint")
	if !refTo(ap.Props["FileSystemId"], fs.ID) || jsonOf(ap.Props["PosixUser"]) != `{"Gid":"2000","Uid":"2000"}` ||
		jsonOf(ap.Props["RootDirectory"]) != `{"CreationInfo":{"OwnerGid":"2000","OwnerUid":"2000","Permissions":"750"},"Path":"/downloads"}` {
		t.Errorf("access point %s", jsonOf(ap.Props))
	}
	policy := jsonOf(fs.Props["FileSystemPolicy"])
	for _, want := range []string{
		`{"Action":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}},"Effect":"Deny","Principal":{"AWS":"*"},"Sid":"DenyWithoutTLS"}`,
		`"Condition":{"Null":{"elasticfilesystem:AccessPointArn":"true"}},"Effect":"Deny"`,
	} {
		if !strings.Contains(policy, want) {
			t.Errorf("file system policy %s lacks %s", policy, want)
		}
	}
	if strings.Contains(policy, `"Effect":"Allow"`) {
		t.Errorf("the file system policy allows someone: %s", policy)
	}
	// Mounted at DOWNLOAD_PATH, through the access point, over TLS, with IAM, before aircraftd starts.
	env := fleetEnv(t, s)
	files, commands, _ := initConfig(t, s, "install")
	mount := joinedText(commands["30-mount-downloads"]["command"])
	want := fmt.Sprintf("${%s}:/ %s efs _netdev,noresvport,tls,iam,accesspoint=${%s} 0 0", fs.ID, env["DOWNLOAD_PATH"], ap.ID)
	if !strings.Contains(mount, want) || !strings.Contains(mount, "mount "+env["DOWNLOAD_PATH"]) {
		t.Errorf("mount command %q, want the fstab line %q", mount, want)
	}
	dropIn := joinedText(files[fleet.DownloadsDropInPath]["content"])
	if !strings.Contains(dropIn, "RequiresMountsFor="+env["DOWNLOAD_PATH"]) || !strings.Contains(dropIn, "ReadWritePaths="+env["DOWNLOAD_PATH"]) {
		t.Errorf("aircraftd drop-in %q", dropIn)
	}
	if !strings.Contains(joinedText(commands["10-user"]["command"]), "--uid 2000 ") {
		t.Error("aircraftd's uid is not the access point's owner")
	}
	// The single instance keeps its local disk.
	if d := stackOf(t, "default").serviceEnv(t)["DOWNLOAD_PATH"]; d != host.StateDir+"/downloads" {
		t.Errorf("single instance DOWNLOAD_PATH=%s", d)
	}
	// The fleet starts once the file system can be mounted.
	group := s.One(t, "AWS::AutoScaling::AutoScalingGroup")
	for _, r := range append(mts, ap, fs) {
		if !slices.Contains(list(group.Raw["DependsOn"]), any(r.ID)) {
			t.Errorf("the group does not wait for %s", r.ID)
		}
	}
}

func TestLoadBalancedIAM(t *testing.T) {
	s := stackOf(t, "loadBalanced")
	fs, ap := s.One(t, "AWS::EFS::FileSystem"), s.One(t, "AWS::EFS::AccessPoint")
	stmts, managed := s.roleStatements(t)
	var efs []statement
	for _, st := range stmts {
		if slices.ContainsFunc(st.Actions, func(a string) bool { return strings.HasPrefix(a, "elasticfilesystem:") }) {
			efs = append(efs, st)
		}
	}
	if len(efs) != 1 || !slices.Equal(efs[0].Actions, []string{"elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"}) ||
		!slices.Equal(efs[0].Resources, []string{"${" + fs.ID + ".Arn}"}) {
		t.Fatalf("EFS statements %+v: want ClientMount and ClientWrite (no root access) on the file system", efs)
	}
	policy := s.Resources("AWS::IAM::Policy")
	if !strings.Contains(jsonOf(policy), `"Condition":{"StringEquals":{"elasticfilesystem:AccessPointArn":{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":elasticfilesystem:",{"Ref":"AWS::Region"},":",{"Ref":"AWS::AccountId"},":access-point/",{"Ref":"`+ap.ID+`"}]]}}}`) {
		t.Error("the EFS grant is not limited to the access point")
	}
	// Otherwise the single instance's rights: the bucket read-only, its logs, its secrets, Session Manager.
	assertRoleReadsBucketOnly(t, s)
	if len(managed) != 0 {
		t.Errorf("managed policies %v", managed)
	}
	single, _ := stackOf(t, "default").roleStatements(t)
	for _, sid := range []string{"s3:ListBucket", "s3:GetObject", "logs:PutLogEvents", "secretsmanager:GetSecretValue", "ssmmessages:OpenDataChannel"} {
		has := func(stmts []statement) bool {
			return slices.ContainsFunc(stmts, func(st statement) bool { return slices.Contains(st.Actions, sid) })
		}
		if has(single) != has(stmts) {
			t.Errorf("%s: single %v, fleet %v", sid, has(single), has(stmts))
		}
	}
}

func TestLoadBalancedAccessLogs(t *testing.T) {
	s := stackOf(t, "loadBalancedDNS")
	lb := s.One(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
	attrs := map[string]any{}
	for _, a := range list(lb.Props["LoadBalancerAttributes"]) {
		attrs[fmt.Sprint(a.(map[string]any)["Key"])] = a.(map[string]any)["Value"]
	}
	var logs Resource
	for _, b := range s.Resources("AWS::S3::Bucket") {
		if refTo(attrs["access_logs.s3.bucket"], b.ID) {
			logs = b
		}
	}
	// aircraftd closes idle keep-alive connections after 120 s (app/internal/serve): the load balancer must first.
	if idle, _ := strconv.Atoi(fmt.Sprint(attrs["idle_timeout.timeout_seconds"])); idle < 60 || idle >= 120 {
		t.Errorf("idle timeout %v s: want at least the default 60 s and below the service's 120 s keep-alive", attrs["idle_timeout.timeout_seconds"])
	}
	if attrs["access_logs.s3.enabled"] != "true" || logs.ID == "" || attrs["deletion_protection.enabled"] != "true" {
		t.Fatalf("load balancer attributes %s", jsonOf(attrs))
	}
	check(t, func() {
		s.Assertions().HasResource(jsii.String("AWS::S3::Bucket"), map[string]any{
			"Properties": map[string]any{
				"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
					map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}},
				}},
				"PublicAccessBlockConfiguration": map[string]any{
					"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
				},
				"LifecycleConfiguration": map[string]any{"Rules": []any{map[string]any{"Id": "expire-access-logs", "ExpirationInDays": 30, "Status": "Enabled"}}},
			},
			"DeletionPolicy": "Retain",
		})
	})
	var policy Resource
	for _, p := range s.Resources("AWS::S3::BucketPolicy") {
		if refTo(p.Props["Bucket"], logs.ID) {
			policy = p
		}
	}
	doc := jsonOf(policy.Props)
	for _, want := range []string{`"aws:SecureTransport":"false"`, `"Service":"logdelivery.elasticloadbalancing.amazonaws.com"`,
		`"Fn::FindInMap":["ElbAccounts",{"Ref":"AWS::Region"},"account",{"DefaultValue":"none"}]`, `/alb/AWSLogs/",{"Ref":"AWS::AccountId"},"/*"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("access log bucket policy lacks %s: %s", want, doc)
		}
	}
	// us-east-1's ELB account, from AWS's documentation (not from the CDK's facts the code uses).
	if m := jsonOf(s.Template["Mappings"]); !strings.Contains(m, `"us-east-1":{"account":"127311923021"}`) {
		t.Errorf("ELB accounts %s", m)
	}
	if !slices.Contains(list(lb.Raw["DependsOn"]), any(policy.ID)) {
		t.Error("the load balancer may be made before the bucket policy that lets it write its logs")
	}
}

func TestLoadBalancedGroupAndRollingRelease(t *testing.T) {
	for name, want := range map[string]struct{ desired, min, max, inService float64 }{
		"loadBalanced":    {3, 3, 4, 3}, // defaults: min = instances, max = instances+1
		"loadBalancedDNS": {2, 1, 5, 2},
	} {
		s := stackOf(t, name)
		g := s.One(t, "AWS::AutoScaling::AutoScalingGroup")
		if g.Props["DesiredCapacity"] != strconv.Itoa(int(want.desired)) || g.Props["MinSize"] != strconv.Itoa(int(want.min)) ||
			g.Props["MaxSize"] != strconv.Itoa(int(want.max)) {
			t.Errorf("%s: desired %v min %v max %v", name, g.Props["DesiredCapacity"], g.Props["MinSize"], g.Props["MaxSize"])
		}
		for _, sn := range list(g.Props["VPCZoneIdentifier"]) {
			if !slices.Contains(s.subnets(true), fmt.Sprint(sn.(map[string]any)["Ref"])) {
				t.Errorf("%s: instances in %v", name, sn)
			}
		}
		roll := g.Raw["UpdatePolicy"].(map[string]any)["AutoScalingRollingUpdate"].(map[string]any)
		if roll["MaxBatchSize"] != float64(1) || roll["MinInstancesInService"] != want.inService || roll["WaitOnResourceSignals"] != true ||
			roll["PauseTime"] != "PT15M" {
			t.Errorf("%s: rolling update %s", name, jsonOf(roll))
		}
		if jsonOf(g.Raw["CreationPolicy"]) != fmt.Sprintf(`{"ResourceSignal":{"Count":%v,"Timeout":"PT15M"}}`, want.desired) {
			t.Errorf("%s: creation policy %s", name, jsonOf(g.Raw["CreationPolicy"]))
		}
		if g.Props["HealthCheckType"] != "EC2" {
			t.Errorf("%s: health check type %v", name, g.Props["HealthCheckType"])
		}
	}

	// Two releases: the same group and load balancer, a new launch template version that names the new release, and a
	// gate (aircraft-ready after aircraftd started) whose result is the instance's signal.
	ctx := configurations["loadBalanced"]
	v1, v2 := synth(t, ctx, fakeBinary(t, "fleet release 1")), synth(t, ctx, fakeBinary(t, "fleet release 2"))
	g1, g2 := v1.One(t, "AWS::AutoScaling::AutoScalingGroup"), v2.One(t, "AWS::AutoScaling::AutoScalingGroup")
	lt1, lt2 := v1.One(t, "AWS::EC2::LaunchTemplate"), v2.One(t, "AWS::EC2::LaunchTemplate")
	if g1.ID != g2.ID || lt1.ID != lt2.ID {
		t.Fatalf("a release replaces the group or the template: %s/%s -> %s/%s", g1.ID, lt1.ID, g2.ID, lt2.ID)
	}
	if !refTo(g1.Props["LaunchTemplate"].(map[string]any)["Version"], lt1.ID) ||
		!strings.Contains(jsonOf(g1.Props["LaunchTemplate"]), "LatestVersionNumber") {
		t.Errorf("the group does not follow the template's latest version: %s", jsonOf(g1.Props["LaunchTemplate"]))
	}
	ud1 := joinedText(lt1.Props["LaunchTemplateData"].(map[string]any)["UserData"])
	ud2 := joinedText(lt2.Props["LaunchTemplateData"].(map[string]any)["UserData"])
	r1, r2 := v1.Output("ReleaseId").(string), v2.Output("ReleaseId").(string)
	if r1 == r2 || !strings.Contains(ud1, "release "+r1) || !strings.Contains(ud2, "release "+r2) {
		t.Errorf("releases %s, %s: the user data must name its release (a new template version per release)", r1, r2)
	}
	for _, want := range []string{"--resource '" + g1.ID + "' --configsets deploy", `cfn-signal --exit-code "$status"`, "--resource '" + g1.ID + "'\nexit"} {
		if !strings.Contains(ud1, want) {
			t.Errorf("user data lacks %q:\n%s", want, ud1)
		}
	}
	_, gate, _ := initConfig(t, v1, "gate")
	sets := cfnInit(t, v1)["configSets"]
	if jsonOf(sets) != `{"deploy":["install","gate"]}` || joinedText(gate["10-ready"]["command"]) != fleet.ReadyScriptPath {
		t.Errorf("config sets %s, gate %s: the gate must run after aircraftd is installed and started", jsonOf(sets), jsonOf(gate))
	}
	for _, typ := range []string{"AWS::ElasticLoadBalancingV2::LoadBalancer", "AWS::ElasticLoadBalancingV2::TargetGroup",
		"AWS::EFS::FileSystem", "AWS::EC2::SecurityGroup", "AWS::RDS::DBInstance"} {
		if jsonOf(v1.Resources(typ)) != jsonOf(v2.Resources(typ)) {
			t.Errorf("%s changes with the app", typ)
		}
	}
}

func TestLoadBalancedOutputs(t *testing.T) {
	s := stackOf(t, "loadBalanced")
	for _, name := range []string{"ApiUrl", "BucketName", "DatabaseEndpoint", "DatabaseSecretArn", "MongoSecretArn", "ApiTokenSecretArn",
		"LoadBalancerDnsName", "AutoScalingGroupName", "TargetGroupArn", "FileSystemId", "AccessLogBucketName", "LogGroupName", "ReleaseId"} {
		if s.Output(name) == nil {
			t.Errorf("no output %s", name)
		}
	}
	for _, name := range []string{"InstanceId", "ElasticIp", "CertificateParameterName"} {
		if s.Output(name) != nil {
			t.Errorf("output %s of the single instance", name)
		}
	}
}

var cfnRef = regexp.MustCompile(`\$\{[A-Za-z0-9:.]+\}`)

func TestFleetScriptsPassShellcheck(t *testing.T) {
	shellcheck(t, "fleet user-data", fleet.RenderFleetUserData("us-east-1", "AircraftPlatform", "FleetGroupASGF037160E", "0123456789ab"))
	shellcheck(t, "aircraft-ready", fleet.FleetbootFile("aircraft-ready.sh"))
	// The inline shell of the fleet's cfn-init commands (and their tests) too.
	s := stackOf(t, "loadBalanced")
	for _, config := range []string{"install", "gate"} {
		_, commands, _ := initConfig(t, s, config)
		for key, c := range commands {
			for _, field := range []string{"command", "test"} {
				// CloudFormation values (${LogicalId}) are literal text on the instance, not shell variables.
				if sh := cfnRef.ReplaceAllString(joinedText(c[field]), "cfn-value"); c[field] != nil {
					shellcheck(t, config+"-"+key+"-"+field, "#!/bin/bash\n"+sh+"\n")
				}
			}
		}
	}
}

// The fleet's service log group follows the stage like the single instance's: retained in prod under a generated name
// (a redeploy after a destroy does not collide with it), named and deleted in dev.
func TestLoadBalancedServiceLogsFollowTheStage(t *testing.T) {
	for name, prod := range map[string]bool{"loadBalanced": false, "loadBalancedDNS": true} {
		s := stackOf(t, name)
		var service []Resource
		for _, lg := range s.Resources("AWS::Logs::LogGroup") {
			if !strings.HasPrefix(strOf(lg.Props["LogGroupName"]), "/aws/rds/") && !isMetricsEvents(lg) && !isPipelineLogs(lg) {
				service = append(service, lg)
			}
		}
		if len(service) != 1 {
			t.Fatalf("%s: %d service log groups", name, len(service))
		}
		lg, logName := service[0], strOf(service[0].Props["LogGroupName"])
		if prod && (lg.Raw["DeletionPolicy"] != "Retain" || logName != "") {
			t.Errorf("%s: prod service log group: DeletionPolicy %v, name %q", name, lg.Raw["DeletionPolicy"], logName)
		}
		if !prod && (lg.Raw["DeletionPolicy"] != "Delete" || logName != "/aircraft/"+s.Config.StackName+"/service") {
			t.Errorf("%s: dev service log group: DeletionPolicy %v, name %q", name, lg.Raw["DeletionPolicy"], logName)
		}
	}
}
