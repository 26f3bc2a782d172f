package main

// What issue 4 adds to the seed: DocumentDB or an external MongoDB, bucket lifecycle, the service's Elastic IP, Session
// Manager and logs, stage-dependent backups and removal, HTTPS modes, outputs, context validation.

import (
	"debug/elf"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/aircraftdata/platform/infra/appbuild"
	"github.com/aircraftdata/platform/infra/host"
)

func TestDocumentDB(t *testing.T) {
	s := stackOf(t, "default")
	check(t, func() {
		tpl := s.Assertions()
		tpl.ResourceCountIs(jsii.String("AWS::DocDB::DBInstance"), jsii.Number(1))
		tpl.HasResourceProperties(jsii.String("AWS::DocDB::DBCluster"), map[string]any{
			"StorageEncrypted": true, "Port": 27017, "EngineVersion": "5.0.0",
			"MasterUsername": assertions.Match_AnyValue(), "MasterUserPassword": assertions.Match_AnyValue(),
		})
		tpl.HasResourceProperties(jsii.String("AWS::DocDB::DBClusterParameterGroup"), map[string]any{
			"Family": "docdb5.0", "Parameters": map[string]any{"tls": "enabled"},
		})
	})
	cluster := s.One(t, "AWS::DocDB::DBCluster")
	if pw := joinedText(cluster.Props["MasterUserPassword"]); !strings.Contains(pw, "{{resolve:secretsmanager:") {
		t.Errorf("DocumentDB password %s: want a dynamic reference to the generated secret", pw)
	}
	in := s.rulesOf(s.docdbSG(t), "ingress")
	if len(in) != 1 || in[0].Peer != s.serviceSG(t) || in[0].FromPort != 27017 || in[0].ToPort != 27017 {
		t.Errorf("DocumentDB ingress %v: want 27017 from the service group only", in)
	}
	if out := s.rulesOf(s.docdbSG(t), "egress"); len(out) != 0 {
		t.Errorf("DocumentDB egress %v", out)
	}
	env := s.serviceEnv(t)
	if env["MONGODB_TLS_CA_FILE"] != host.CABundlePath || !strings.Contains(env["MONGODB_URL_SECRET_ARN"], "DocStoreClusterSecretAttachment") {
		t.Errorf("Mongo settings: %v", env)
	}
}

func TestExternalMongoReplacesDocumentDB(t *testing.T) {
	s := stackOf(t, "externalMongo")
	arn := configurations["externalMongo"]["mongoUriSecretArn"].(string)
	for _, typ := range []string{"AWS::DocDB::DBCluster", "AWS::DocDB::DBInstance", "AWS::DocDB::DBSubnetGroup"} {
		if n := len(s.Resources(typ)); n != 0 {
			t.Errorf("%d %s with an external MongoDB", n, typ)
		}
	}
	env := s.serviceEnv(t)
	if env["MONGODB_URL_SECRET_ARN"] != arn {
		t.Errorf("MONGODB_URL_SECRET_ARN=%s", env["MONGODB_URL_SECRET_ARN"])
	}
	if _, ok := env["MONGODB_TLS_CA_FILE"]; ok {
		t.Error("MONGODB_TLS_CA_FILE is for DocumentDB")
	}
	stmts, _ := s.roleStatements(t)
	readable := false
	for _, st := range stmts {
		readable = readable || slices.Contains(st.Actions, "secretsmanager:GetSecretValue") && slices.Contains(st.Resources, arn)
	}
	if !readable {
		t.Error("the service cannot read the external Mongo secret")
	}
	// Out on 27017 to mongoCidr only, never to the whole internet.
	var mongo []string
	for _, r := range s.rulesOf(s.serviceSG(t), "egress") {
		if r.FromPort <= 27017 && 27017 <= r.ToPort {
			mongo = append(mongo, r.Cidr)
		}
	}
	if !slices.Equal(mongo, []string{"192.0.2.0/24"}) {
		t.Errorf("egress on 27017 to %v, want mongoCidr 192.0.2.0/24 only", mongo)
	}
}

func TestBucketLifecycleAndEncryption(t *testing.T) {
	for name, days := range map[string]float64{"default": 30, "narrow": 14} {
		s := stackOf(t, name)
		check(t, func() {
			s.Assertions().HasResourceProperties(jsii.String("AWS::S3::Bucket"), map[string]any{
				"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
					map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}},
				}},
				"LifecycleConfiguration": map[string]any{"Rules": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
					"Status": "Enabled", "NoncurrentVersionExpiration": map[string]any{"NoncurrentDays": days},
				})})},
			})
		})
	}
}

func TestServiceInstance(t *testing.T) {
	s := stackOf(t, "default")
	inst := s.One(t, "AWS::EC2::Instance")
	eip := s.One(t, "AWS::EC2::EIP")
	assoc := s.One(t, "AWS::EC2::EIPAssociation")
	if !refTo(assoc.Props["InstanceId"], inst.ID) || !refTo(assoc.Props["AllocationId"], eip.ID) {
		t.Errorf("Elastic IP association %s", jsonOf(assoc.Props))
	}
	if _, ok := inst.Raw["CreationPolicy"]; ok {
		t.Error("the instance has a creation policy: the release's wait condition takes the signal")
	}
	// Session Manager instead of SSH.
	statements, managed := s.roleStatements(t)
	if len(managed) != 0 {
		t.Errorf("managed policies %v: AmazonSSMManagedInstanceCore reads every SSM parameter of the account", managed)
	}
	if !slices.ContainsFunc(statements, func(st statement) bool { return slices.Equal(st.Actions, host.SessionManagerActions) }) {
		t.Error("no Session Manager permissions")
	}
	// CloudWatch Logs: its own group, with retention, and nothing more.
	lgs := slices.DeleteFunc(slices.DeleteFunc(s.Resources("AWS::Logs::LogGroup"), isMetricsEvents), isPipelineLogs) // the service's and PostgreSQL's
	if len(lgs) != 2 {
		t.Fatalf("%d log groups", len(lgs))
	}
	names := []string{strOf(lgs[0].Props["LogGroupName"]), strOf(lgs[1].Props["LogGroupName"])}
	slices.Sort(names)
	if want := []string{"/aircraft/AircraftPlatform/service", "/aws/rds/instance/aircraftplatform-pg/postgresql"}; !slices.Equal(names, want) {
		t.Errorf("log groups %v, want %v", names, want)
	}
	for _, cfg := range []struct {
		name string
		days float64
	}{{"default", 30}, {"narrow", 90}} {
		for _, lg := range stackOf(t, cfg.name).Resources("AWS::Logs::LogGroup") {
			if lg.Props["RetentionInDays"] != cfg.days && !isMetricsEvents(lg) { // those keep a week (observability/agentmetrics.go)
				t.Errorf("%s: %s keeps %v days", cfg.name, lg.ID, lg.Props["RetentionInDays"])
			}
		}
	}
	service := lgs[0]
	if strings.HasPrefix(strOf(service.Props["LogGroupName"]), "/aws/rds/") {
		service = lgs[1]
	}
	stmts, _ := s.roleStatements(t)
	for _, st := range stmts {
		for _, a := range st.Actions {
			if strings.HasPrefix(a, "logs:") && !slices.Equal(st.Resources, []string{"${" + service.ID + ".Arn}"}) &&
				!(len(st.Resources) == 1 && strings.Contains(st.Resources[0], "ServiceMetricsEvents")) {
				t.Errorf("%s on %v: only the service log group and the agent's metric events", a, st.Resources)
			}
		}
	}
}

func TestStageDecidesBackupsAndRemoval(t *testing.T) {
	for name, want := range map[string]struct {
		policy     string
		backupDays float64
		protected  bool
		bucket     string
	}{
		"default": {"Delete", 1, false, "Delete"},
		"prod":    {"Snapshot", 7, true, "Retain"},
	} {
		s := stackOf(t, name)
		db := s.One(t, "AWS::RDS::DBInstance")
		if db.Raw["DeletionPolicy"] != want.policy || db.Props["BackupRetentionPeriod"] != want.backupDays || db.Props["DeletionProtection"] != want.protected {
			t.Errorf("%s: RDS DeletionPolicy=%v backups=%v protection=%v", name, db.Raw["DeletionPolicy"], db.Props["BackupRetentionPeriod"], db.Props["DeletionProtection"])
		}
		doc := s.One(t, "AWS::DocDB::DBCluster")
		if doc.Raw["DeletionPolicy"] != want.policy || doc.Props["BackupRetentionPeriod"] != want.backupDays {
			t.Errorf("%s: DocumentDB DeletionPolicy=%v backups=%v", name, doc.Raw["DeletionPolicy"], doc.Props["BackupRetentionPeriod"])
		}
		if b := s.Resource(t, s.bucketID(t)); b.Raw["DeletionPolicy"] != want.bucket {
			t.Errorf("%s: bucket DeletionPolicy=%v", name, b.Raw["DeletionPolicy"])
		}
	}
}

func TestHTTPSModes(t *testing.T) {
	t.Run("self-signed without a domain", func(t *testing.T) {
		s := stackOf(t, "default")
		// One writer: the instance. The stack only names the parameter (no resource whose value it would restore).
		if len(s.Resources("AWS::SSM::Parameter")) != 0 || s.Output("CertificateParameterName") != "/aircraft/AircraftPlatform/tls-certificate" {
			t.Errorf("certificate parameter: %d resources, output %v", len(s.Resources("AWS::SSM::Parameter")), s.Output("CertificateParameterName"))
		}
		stmts, _ := s.roleStatements(t)
		var ssm []statement
		for _, st := range stmts {
			// Session Manager's statement (host/sessionmanager.go) registers the instance; it touches no parameter.
			if slices.ContainsFunc(st.Actions, func(a string) bool { return strings.HasPrefix(a, "ssm:") }) && !slices.Equal(st.Actions, host.SessionManagerActions) {
				ssm = append(ssm, st)
			}
		}
		if len(ssm) != 1 || !slices.Equal(ssm[0].Actions, []string{"ssm:PutParameter"}) ||
			len(ssm[0].Resources) != 1 || !strings.HasSuffix(ssm[0].Resources[0], ":parameter/aircraft/AircraftPlatform/tls-certificate") {
			t.Errorf("ssm statements %+v: want PutParameter on the certificate parameter only", ssm)
		}
		if env := s.serviceEnv(t); env["TLS_CERT_FILE"] != host.TLSCertPath || env["ACME_DOMAIN"] != "" {
			t.Errorf("environment %v", env)
		}
		if strings.Contains(joinedText(s.Output("ApiUrl")), "api.") || !strings.Contains(joinedText(s.Output("ApiUrl")), ".PublicIp}") {
			t.Errorf("ApiUrl %s", joinedText(s.Output("ApiUrl")))
		}
	})
	t.Run("ACME with domainName and hostedZoneId", func(t *testing.T) {
		s := stackOf(t, "acme")
		if len(s.Resources("AWS::SSM::Parameter")) != 0 || s.Output("CertificateParameterName") != nil {
			t.Error("no certificate parameter with ACME")
		}
		env := s.serviceEnv(t)
		if env["ACME_DOMAIN"] != "api.aircraft.example.com" || env["ACME_EMAIL"] != "ops@example.com" || env["ACME_CACHE_DIR"] == "" || env["TLS_CERT_FILE"] != "" {
			t.Errorf("environment %v", env)
		}
		rec := s.One(t, "AWS::Route53::RecordSet")
		eip := s.One(t, "AWS::EC2::EIP")
		if rec.Props["Name"] != "api.aircraft.example.com." || rec.Props["Type"] != "A" || rec.Props["HostedZoneId"] != "Z0123456789ABCDEFGHIJ" ||
			!refTo(list(rec.Props["ResourceRecords"])[0], eip.ID) {
			t.Errorf("DNS record %s", jsonOf(rec.Props))
		}
		// allowedCidr narrows the API (443), but port 80 must stay reachable for the http-01 challenge.
		var got []string
		for _, r := range s.rulesOf(s.serviceSG(t), "ingress") {
			got = append(got, fmt.Sprintf("%v/%s", r.FromPort, r.Cidr))
		}
		slices.Sort(got)
		if want := []string{"443/198.51.100.0/24", "80/0.0.0.0/0"}; !slices.Equal(got, want) {
			t.Errorf("ingress %v, want %v", got, want)
		}
		if s.Output("ApiUrl") != "https://api.aircraft.example.com" {
			t.Errorf("ApiUrl %v", s.Output("ApiUrl"))
		}
	})
}

func TestOutputs(t *testing.T) {
	s := stackOf(t, "default")
	for _, name := range []string{"ApiUrl", "BucketName", "DatabaseEndpoint", "DatabaseSecretArn", "InstanceId",
		"CertificateParameterName", "ApiTokenSecretArn", "MongoSecretArn", "ElasticIp", "LogGroupName", "ReleaseId"} {
		if s.Output(name) == nil {
			t.Errorf("no output %s", name)
		}
	}
	token := s.Resource(t, strings.Trim(strings.TrimPrefix(joinedText(s.Output("ApiTokenSecretArn")), "${"), "}"))
	if jsonOf(token.Props["GenerateSecretString"]) != `{"ExcludePunctuation":true,"PasswordLength":48}` {
		t.Errorf("API token secret %s", jsonOf(token.Props))
	}
}

func TestGravitonGetsAnArm64Binary(t *testing.T) {
	if host.InstanceArch("t2.micro") != "amd64" || host.InstanceArch("t4g.small") != "arm64" || host.InstanceArch("c7g.large") != "arm64" {
		t.Fatal("instanceArch")
	}
	if host.AMIParameter("arm64") != "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64" {
		t.Error(host.AMIParameter("arm64"))
	}
	if os.Getenv(appbuild.BinaryOverrideEnv) != "" {
		t.Skipf("%s is set: the binaries are not built here", appbuild.BinaryOverrideEnv)
	}
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		bin := serviceBinary(t, arch)
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: %v (AIRCRAFTD_BINARY must be a linux binary)", bin, err)
		}
		if f.Machine != machine || f.Class != elf.ELFCLASS64 {
			t.Errorf("%s: machine %v", arch, f.Machine)
		}
		f.Close()
	}
	s := synth(t, map[string]any{"instanceType": "t4g.small"}, fakeBinary(t, "arm64 stand-in"))
	if img := s.One(t, "AWS::EC2::Instance").Props["ImageId"]; img != "resolve:ssm:"+host.AMIParameter("arm64") {
		t.Errorf("ImageId %v", img)
	}
}
