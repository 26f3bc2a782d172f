package awsstack

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestSettings(t *testing.T) {
	s, err := ReadSettings(env(nil))
	if err != nil || s.Enabled {
		t.Fatalf("no E2E_AWS: %+v %v", s, err)
	}
	s, err = ReadSettings(env(map[string]string{"E2E_AWS": "1", "AWS_DEFAULT_REGION": "eu-west-1"}))
	if err != nil || !s.Enabled || s.Region != "eu-west-1" || s.InstanceType != "t2.micro" || s.StackName != "" {
		t.Errorf("defaults: %+v %v", s, err)
	}
	for name, bad := range map[string]map[string]string{
		"no region":       {"E2E_AWS": "1"},
		"bad stack name":  {"E2E_AWS": "1", "AWS_REGION": "us-east-1", "E2E_STACK_NAME": "1stack"},
		"stack name _":    {"E2E_AWS": "1", "AWS_REGION": "us-east-1", "E2E_STACK_NAME": "my_stack"},
		"bad cidr":        {"E2E_AWS": "1", "AWS_REGION": "us-east-1", "E2E_ALLOWED_CIDR": "10.0.0.1"},
		"zone, no domain": {"E2E_AWS": "1", "AWS_REGION": "us-east-1", "E2E_HOSTED_ZONE_ID": "Z123456"},
	} {
		if _, err := ReadSettings(env(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	s, _ = ReadSettings(env(map[string]string{"E2E_AWS": "1", "AWS_REGION": "us-east-1", "E2E_INSTANCE_TYPE": "t3.small",
		"E2E_DOMAIN_NAME": "api.example.org", "E2E_HOSTED_ZONE_ID": "Z123456"}))
	want := []string{"stackName=S", "stage=dev", "instanceType=t3.small", "allowedCidr=203.0.113.7/32",
		"domainName=api.example.org", "hostedZoneId=Z123456"}
	if got := s.CDKContext("S", "203.0.113.7/32"); !slices.Equal(got, want) {
		t.Errorf("context %v, want %v", got, want)
	}
}

func TestStackNames(t *testing.T) {
	at := time.Date(2026, 11, 24, 8, 4, 12, 0, time.FixedZone("CET", 3600))
	a, b := NewStackName(at), NewStackName(at)
	if !regexp.MustCompile(`^AircraftE2E-20261124-070412-[0-9a-f]{4}$`).MatchString(a) || !stackNamePattern.MatchString(a) {
		t.Errorf("stack name %q", a)
	}
	if a == b {
		t.Errorf("two runs in the same second got the same stack name %s", a)
	}
}

func TestCidrOf(t *testing.T) {
	if c, err := CidrOf("203.0.113.7\n"); err != nil || c != "203.0.113.7/32" {
		t.Errorf("%q %v", c, err)
	}
	for _, bad := range []string{"", "<html>", "2001:db8::1", "203.0.113.7/24"} {
		if _, err := CidrOf(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fakeT is enough of a test to watch the stages: FailNow stops the calling goroutine as testing.T's does.
type fakeT struct {
	mu     sync.Mutex
	failed bool
}

func (f *fakeT) Fail()                       { f.mu.Lock(); f.failed = true; f.mu.Unlock() }
func (f *fakeT) FailNow()                    { f.Fail(); runtime.Goexit() }
func (f *fakeT) Fatal(...any)                { f.FailNow() }
func (f *fakeT) Fatalf(string, ...any)       { f.FailNow() }
func (f *fakeT) Error(...any)                { f.Fail() }
func (f *fakeT) Errorf(string, ...any)       { f.Fail() }
func (f *fakeT) Name() string                { return "fake" }
func (f *fakeT) Helper()                     {}
func (f *fakeT) Logf(string, ...any)         {}
func (f *fakeT) Log(...any)                  {}
func (f *fakeT) Skip(...any)                 {}
func (f *fakeT) Skipf(string, ...any)        {}
func (f *fakeT) Cleanup(func())              {}
func (f *fakeT) TempDir() string             { return "" }
func (f *fakeT) Setenv(string, string)       {}
func (f *fakeT) Chdir(string)                {}
func (f *fakeT) Skipped() bool               { return false }
func (f *fakeT) Failed() bool                { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }
func (f *fakeT) SkipNow()                    { runtime.Goexit() }
func (f *fakeT) Deadline() (time.Time, bool) { return time.Time{}, false }

// lifecycle runs Lifecycle with stages that record themselves; failAt makes that stage fail (FailNow).
func lifecycle(getenv func(string) string, failAt string) (ran []string, failed bool) {
	ft := &fakeT{}
	stage := func(name string) func() {
		return func() {
			ran = append(ran, name)
			if name == failAt {
				ft.FailNow()
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Lifecycle(ft, getenv, stage(StageDeploy), stage(StageValidate), stage(StageTeardown))
	}()
	<-done
	return ran, ft.Failed()
}

func TestLifecycle(t *testing.T) {
	for _, c := range []struct {
		env    map[string]string
		failAt string
		want   []string
	}{
		{nil, "", []string{"deploy", "validate", "teardown"}},
		// Teardown runs whatever fails before it: a half-deployed stack is destroyed too.
		{nil, "deploy", []string{"deploy", "teardown"}},
		{nil, "validate", []string{"deploy", "validate", "teardown"}},
		// terratest's convention: SKIP_<stage>, any non-empty value.
		{map[string]string{"SKIP_teardown": "1"}, "", []string{"deploy", "validate"}},
		{map[string]string{"SKIP_deploy": "true", "SKIP_teardown": "yes"}, "", []string{"validate"}},
		{map[string]string{"SKIP_deploy": "1", "SKIP_validate": "1"}, "", []string{"teardown"}},
		{map[string]string{"SKIP_validate": ""}, "", []string{"deploy", "validate", "teardown"}},
	} {
		ran, failed := lifecycle(env(c.env), c.failAt)
		if !slices.Equal(ran, c.want) || failed != (c.failAt != "") {
			t.Errorf("env %v, failing %q: ran %v (failed %v), want %v", c.env, c.failAt, ran, failed, c.want)
		}
	}
}

func TestTestData(t *testing.T) {
	dir := t.TempDir()
	if got := TestDataPath(dir, "Stack"); got != filepath.Join(dir, ".test-data", "Stack.json") {
		t.Errorf("path %s: not terratest's layout", got)
	}
	var st State
	if found, err := LoadTestData(dir, "Stack", &st); found || err != nil {
		t.Fatalf("nothing saved: %v %v", found, err)
	}
	want := State{StackName: "AircraftE2E-x", Region: "us-east-1", AllowedCidr: "203.0.113.7/32", Context: []string{"a=b"}, OutputsFile: "/o.json"}
	if err := SaveTestData(dir, "Stack", want); err != nil {
		t.Fatal(err)
	}
	if found, err := LoadTestData(dir, "Stack", &st); !found || err != nil || st.StackName != want.StackName ||
		!slices.Equal(st.Context, want.Context) || st.OutputsFile != want.OutputsFile {
		t.Errorf("loaded %+v (%v %v), want %+v", st, found, err, want)
	}
	if err := CleanupTestData(dir, "Stack"); err != nil {
		t.Fatal(err)
	}
	if err := CleanupTestData(dir, "Stack"); err != nil {
		t.Errorf("cleanup twice: %v", err)
	}
	if _, err := os.Stat(TestDataPath(dir, "Stack")); !os.IsNotExist(err) {
		t.Error("state still there")
	}
}

// outputsFile is what `cdk deploy --outputs-file` writes for a stack without a domain.
const outputsFile = `{
  "AircraftE2E-20261124-070412-ab12": {
    "ApiUrl": "https://203.0.113.10",
    "BucketName": "aircrafte2e-databucket-1x2y3z",
    "DatabaseEndpoint": "aircrafte2e-databaseinstance-abc.cdef1234.us-east-1.rds.amazonaws.com",
    "DatabaseSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
    "MongoSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mongo-AbCdEf",
    "ApiTokenSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf",
    "InstanceId": "i-0123456789abcdef0",
    "ElasticIp": "203.0.113.10",
    "LogGroupName": "/aircraft/AircraftE2E-20261124-070412-ab12/service",
    "ReleaseId": "0123456789ab",
    "CertificateParameterName": "/aircraft/AircraftE2E-20261124-070412-ab12/tls-certificate"
  },
  "SomeOtherStack": {"ApiUrl": "https://198.51.100.1"}
}`

func TestOutputs(t *testing.T) {
	o, err := ParseOutputsFile([]byte(outputsFile), "AircraftE2E-20261124-070412-ab12")
	if err != nil {
		t.Fatal(err)
	}
	if o.APIURL != "https://203.0.113.10" || o.InstanceID != "i-0123456789abcdef0" || o.ElasticIP != "203.0.113.10" ||
		o.BucketName != "aircrafte2e-databucket-1x2y3z" || !o.SelfSigned() {
		t.Errorf("outputs %+v", o)
	}
	if _, err := ParseOutputsFile([]byte(outputsFile), "SomeOtherStack"); err == nil || !strings.Contains(err.Error(), "BucketName") {
		t.Errorf("missing outputs must be named: %v", err)
	}
	if _, err := ParseOutputsFile([]byte(outputsFile), "Nope"); err == nil {
		t.Error("an absent stack was accepted")
	}
	if _, err := ParseOutputsFile([]byte("{"), "x"); err == nil {
		t.Error("broken JSON was accepted")
	}

	// The same from DescribeStacks, with an ACME URL (no certificate parameter) and a trailing slash.
	var cf []cftypes.Output
	for k, v := range map[string]string{"ApiUrl": "https://api.example.org/", "BucketName": "b", "DatabaseEndpoint": "d",
		"DatabaseSecretArn": "s", "MongoSecretArn": "m", "ApiTokenSecretArn": "a", "InstanceId": "i", "ElasticIp": "e",
		"LogGroupName": "l", "ReleaseId": "r"} {
		cf = append(cf, cftypes.Output{OutputKey: aws.String(k), OutputValue: aws.String(v)})
	}
	o, err = OutputsFromCloudFormation(cf)
	if err != nil || o.APIURL != "https://api.example.org" || o.SelfSigned() {
		t.Errorf("from CloudFormation: %+v %v", o, err)
	}
	for _, bad := range []string{"http://203.0.113.10", "https://", "https://x/api", "203.0.113.10"} {
		m := map[string]string{}
		for _, k := range requiredOutputs {
			m[k] = "x"
		}
		m["ApiUrl"] = bad
		if _, err := OutputsFromMap(m); err == nil {
			t.Errorf("ApiUrl %q accepted", bad)
		}
	}
}

func TestCDKCommands(t *testing.T) {
	c := CDK{Root: "/repo"}
	ctx := []string{"stackName=S", "stage=dev"}
	deploy := c.Command(DeployArgs("S", ctx, "/repo/test/awsstack/.test-data/S-outputs.json")...)
	want := []string{"--no-notices", "deploy", "S", "--require-approval", "never", "--outputs-file",
		"/repo/test/awsstack/.test-data/S-outputs.json", "--progress", "events", "-c", "stackName=S", "-c", "stage=dev"}
	if deploy.Command != "/repo/infra/node_modules/.bin/cdk" || deploy.WorkingDir != "/repo" || !slices.Equal(deploy.Args, want) {
		t.Errorf("deploy: %s %v in %s", deploy.Command, deploy.Args, deploy.WorkingDir)
	}
	if !strings.HasPrefix(deploy.Env["PATH"], "/repo/infra/node_modules/node/bin:") || deploy.Env["CDK_DISABLE_VERSION_CHECK"] != "1" {
		t.Errorf("deploy env: %v", deploy.Env)
	}
	destroy := c.Command(DestroyArgs("S", ctx)...)
	if !slices.Equal(destroy.Args, []string{"--no-notices", "destroy", "S", "--force", "-c", "stackName=S", "-c", "stage=dev"}) {
		t.Errorf("destroy: %v", destroy.Args)
	}
	if tc := c.Toolchain(); tc.Command != "make" || !slices.Equal(tc.Args, []string{"-C", "/repo/infra", "toolchain"}) {
		t.Errorf("toolchain: %s %v", tc.Command, tc.Args)
	}
}

func tcp(from, to int32, cidrs []string, groups ...string) ec2types.IpPermission {
	p := ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(from), ToPort: aws.Int32(to)}
	for _, c := range cidrs {
		p.IpRanges = append(p.IpRanges, ec2types.IpRange{CidrIp: aws.String(c)})
	}
	for _, g := range groups {
		p.UserIdGroupPairs = append(p.UserIdGroupPairs, ec2types.UserIdGroupPair{GroupId: aws.String(g)})
	}
	return p
}

func TestSecurityGroupPredicates(t *testing.T) {
	const me = "203.0.113.7/32"
	web := []ec2types.IpPermission{tcp(443, 443, []string{me})}
	if p := ServiceIngressProblems("sg-svc", web, me, false); len(p) != 0 {
		t.Errorf("the designed service group: %v", p)
	}
	if p := ServiceIngressProblems("sg-svc", append(web, tcp(80, 80, []string{me})), me, false); len(p) != 1 {
		t.Errorf("port 80 without ACME: %v", p)
	}
	if p := SSHProblems("sg-svc", web); len(p) != 0 {
		t.Errorf("no 22 in the designed group: %v", p)
	}
	all := ec2types.IpPermission{IpProtocol: aws.String("-1"), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}
	for name, perms := range map[string][]ec2types.IpPermission{
		"ssh":       append(web, tcp(22, 22, []string{"0.0.0.0/0"})),
		"range":     append(web, tcp(0, 1024, []string{"10.0.0.0/8"})),
		"all":       append(web, all),
		"ssh by sg": append(web, tcp(22, 22, nil, "sg-bastion")),
	} {
		if p := SSHProblems("sg-svc", perms); len(p) != 1 {
			t.Errorf("%s: %v", name, p)
		}
		if p := ServiceIngressProblems("sg-svc", perms, me, false); len(p) == 0 {
			t.Errorf("%s: the service group accepted it", name)
		}
	}
	if p := ServiceIngressProblems("sg-svc", []ec2types.IpPermission{tcp(443, 443, []string{"0.0.0.0/0"})}, me, false); len(p) != 1 {
		t.Errorf("443 open to the world instead of %s: %v", me, p)
	}
	// With ACME, 80 is open to the internet (http-01); 443 still only to the clients.
	acme := []ec2types.IpPermission{tcp(443, 443, []string{me}), tcp(80, 80, []string{"0.0.0.0/0"})}
	if p := ServiceIngressProblems("sg-svc", acme, me, true); len(p) != 0 {
		t.Errorf("the ACME service group: %v", p)
	}
	if p := ServiceIngressProblems("sg-svc", acme, me, false); len(p) != 1 {
		t.Errorf("80 open to the world without ACME: %v", p)
	}
	if p := ServiceIngressProblems("sg-svc", []ec2types.IpPermission{tcp(443, 443, []string{"0.0.0.0/0"}), tcp(80, 80, []string{"0.0.0.0/0"})}, me, true); len(p) != 1 {
		t.Errorf("443 open to the world with ACME: %v", p)
	}
	if p := ServiceIngressProblems("sg-svc", nil, me, false); len(p) != 1 {
		t.Errorf("no 443: %v", p)
	}

	db := []ec2types.IpPermission{tcp(5432, 5432, nil, "sg-svc")}
	if p := OnlyFromGroupProblems("sg-db", db, 5432, "sg-svc"); len(p) != 0 {
		t.Errorf("the designed database group: %v", p)
	}
	for name, perms := range map[string][]ec2types.IpPermission{
		"nothing":      nil,
		"cidr too":     {tcp(5432, 5432, []string{"10.0.0.0/16"}, "sg-svc")},
		"other group":  {tcp(5432, 5432, nil, "sg-svc"), tcp(5432, 5432, nil, "sg-other")},
		"wider ports":  {tcp(5000, 6000, nil, "sg-svc")},
		"all traffic":  {{IpProtocol: aws.String("-1"), UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String("sg-svc")}}}},
		"from the web": {tcp(5432, 5432, []string{"0.0.0.0/0"})},
	} {
		if p := OnlyFromGroupProblems("sg-db", perms, 5432, "sg-svc"); len(p) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestInstancePredicate(t *testing.T) {
	good := ec2types.Instance{
		InstanceType: ec2types.InstanceTypeT2Micro,
		State:        &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning},
		MetadataOptions: &ec2types.InstanceMetadataOptionsResponse{
			HttpTokens: ec2types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(1)},
		PublicIpAddress: aws.String("203.0.113.10"),
	}
	if p := InstanceProblems(good, "t2.micro", "203.0.113.10"); len(p) != 0 {
		t.Errorf("the designed instance: %v", p)
	}
	bad := good
	bad.InstanceType = ec2types.InstanceTypeT3Large
	bad.MetadataOptions = &ec2types.InstanceMetadataOptionsResponse{HttpTokens: ec2types.HttpTokensStateOptional}
	bad.KeyName = aws.String("my-key")
	bad.PublicIpAddress = aws.String("198.51.100.1")
	if p := InstanceProblems(bad, "t2.micro", "203.0.113.10"); len(p) != 4 {
		t.Errorf("type, IMDSv1, key pair and address should be reported: %v", p)
	}
	hop := good
	hop.MetadataOptions = &ec2types.InstanceMetadataOptionsResponse{HttpTokens: ec2types.HttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2)}
	if p := InstanceProblems(hop, "t2.micro", "203.0.113.10"); len(p) != 1 {
		t.Errorf("hop limit 2: %v", p)
	}
}

func TestDatabasePredicates(t *testing.T) {
	good := rdstypes.DBInstance{Engine: aws.String("postgres"), DBInstanceClass: aws.String("db.t3.micro"),
		PubliclyAccessible: aws.Bool(false), StorageEncrypted: aws.Bool(true), MultiAZ: aws.Bool(false),
		VpcSecurityGroups: []rdstypes.VpcSecurityGroupMembership{{VpcSecurityGroupId: aws.String("sg-db")}}}
	if p := DatabaseProblems(good); len(p) != 0 {
		t.Errorf("the designed database: %v", p)
	}
	bad := good
	bad.PubliclyAccessible, bad.StorageEncrypted = aws.Bool(true), aws.Bool(false)
	if p := DatabaseProblems(bad); len(p) != 2 || !strings.Contains(p[0], "publicly accessible") {
		t.Errorf("public and unencrypted: %v", p)
	}
	if id, err := DBInstanceID("aircrafte2e-db-abc.cdef1234.us-east-1.rds.amazonaws.com"); err != nil || id != "aircrafte2e-db-abc" {
		t.Errorf("%q %v", id, err)
	}
	for _, bad := range []string{"", "localhost", "x.example.org", ".cdef.us-east-1.rds.amazonaws.com"} {
		if _, err := DBInstanceID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBucketPredicates(t *testing.T) {
	on := &s3types.PublicAccessBlockConfiguration{BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true),
		BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}
	if p := PublicAccessProblems(on); len(p) != 0 {
		t.Errorf("all blocked: %v", p)
	}
	half := *on
	half.BlockPublicPolicy, half.RestrictPublicBuckets = aws.Bool(false), nil
	if p := PublicAccessProblems(&half); !slices.Equal(p, []string{"BlockPublicPolicy is off", "RestrictPublicBuckets is off"}) {
		t.Errorf("half blocked: %v", p)
	}
	if p := PublicAccessProblems(nil); len(p) != 1 {
		t.Errorf("no block: %v", p)
	}

	// GetBucketEncryption's answer: rules, each with a default algorithm or not.
	encryption := func(algorithms ...s3types.ServerSideEncryption) *s3types.ServerSideEncryptionConfiguration {
		c := &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{}}}
		for _, a := range algorithms {
			c.Rules = append(c.Rules, s3types.ServerSideEncryptionRule{
				ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: a}})
		}
		return c
	}
	sseS3 := s3types.ServerSideEncryptionAes256
	if p := EncryptionProblems(encryption(sseS3), sseS3); len(p) != 0 {
		t.Errorf("SSE-S3: %v", p)
	}
	want := []string{"the bucket's default encryption is [aws:kms], want AES256"}
	if p := EncryptionProblems(encryption(s3types.ServerSideEncryptionAwsKms), sseS3); !slices.Equal(p, want) {
		t.Errorf("SSE-KMS for SSE-S3: %v", p)
	}
	if p := EncryptionProblems(nil, sseS3); len(p) != 1 {
		t.Errorf("no encryption: %v", p)
	}

	// The statement CDK writes for enforceSSL: true.
	cdk := `{"Version":"2012-10-17","Statement":[{"Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"false"}},
		"Effect":"Deny","Principal":{"AWS":"*"},"Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]},
		{"Action":["s3:PutBucketPolicy","s3:GetBucket*","s3:List*","s3:DeleteObject*"],"Effect":"Allow",
		"Principal":{"AWS":"arn:aws:iam::123456789012:role/x"},"Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]}]}`
	if !DeniesInsecureTransport(cdk) {
		t.Error("CDK's enforceSSL statement not recognised")
	}
	for name, p := range map[string]string{
		"allow":      strings.Replace(cdk, `"Effect":"Deny"`, `"Effect":"Allow"`, 1),
		"true":       strings.Replace(cdk, `"aws:SecureTransport":"false"`, `"aws:SecureTransport":"true"`, 1),
		"one action": strings.Replace(cdk, `"Action":"s3:*"`, `"Action":"s3:GetObject"`, 1),
		"none":       "",
	} {
		if DeniesInsecureTransport(p) {
			t.Errorf("%s: taken for a TLS-only policy", name)
		}
	}
}

func TestStackGoneProblem(t *testing.T) {
	if err := StackGoneProblem("S", nil, errors.New("operation error CloudFormation: DescribeStacks, api error ValidationError: Stack with id S does not exist")); err != nil {
		t.Errorf("a deleted stack: %v", err)
	}
	if err := StackGoneProblem("S", []string{"DELETE_COMPLETE"}, nil); err != nil {
		t.Errorf("DELETE_COMPLETE: %v", err)
	}
	if err := StackGoneProblem("S", []string{"DELETE_FAILED"}, nil); err == nil {
		t.Error("a stack whose delete failed passed for gone")
	}
	denied := errors.New("api error AccessDenied: User is not authorized to perform: cloudformation:DescribeStacks")
	if err := StackGoneProblem("S", nil, denied); err == nil {
		t.Error("a role that cannot describe the stack passed for a clean teardown")
	}
}
