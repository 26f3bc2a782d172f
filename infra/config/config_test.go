package config

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestConfigDefaults(t *testing.T) {
	c, err := FromContext(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{StackName: "AircraftPlatform", Stage: "dev", InstanceType: "t2.micro", AllowedCidr: "0.0.0.0/0",
		NoncurrentVersionDays: 30, BackupRetentionDays: 1, LogRetentionDays: 30, Instances: 1,
		Pipeline: true, LiveIngestion: true, WorkerMemoryMB: 1769, WorkerTimeoutSeconds: 300, WorkerConcurrency: 11,
		LiveBatchSize: 100, LiveBatchWindowSeconds: 20}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	if c.TLSMode() != "selfsigned" || c.ExternalMongo() {
		t.Errorf("TLS %s, external Mongo %v", c.TLSMode(), c.ExternalMongo())
	}
	prod, _ := FromContext(map[string]any{"stage": "prod", "allowOpenIngress": "true"})
	if prod.BackupRetentionDays != 7 {
		t.Errorf("prod backups %d", prod.BackupRetentionDays)
	}
}

func TestConfigAcceptsCLIStringsAndJSONNumbers(t *testing.T) {
	c, err := FromContext(map[string]any{
		"stackName": "AircraftAlice", "noncurrentVersionDays": "7", "backupRetentionDays": float64(14), "logRetentionDays": "365",
		"domainName": "API.Example.com.", "hostedZoneId": "Z123456ABCDEF", "acmeEmail": "ops@example.com",
		"mongoUriSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mongo-AbC123", "instanceType": "t4g.small",
		"mongoCidr": "192.0.2.0/24",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.NoncurrentVersionDays != 7 || c.BackupRetentionDays != 14 || c.LogRetentionDays != 365 || c.DomainName != "api.example.com" ||
		c.TLSMode() != "acme" || !c.ExternalMongo() || c.StackName != "AircraftAlice" {
		t.Errorf("%+v", c)
	}
}

func TestConfigRejects(t *testing.T) {
	for name, ctx := range map[string]map[string]any{
		"stackName":                           {"stackName": "1bad"},
		"stage":                               {"stage": "staging"},
		"instanceType":                        {"instanceType": "micro"},
		"allowedCidr":                         {"allowedCidr": "10.0.0.1"},
		"allowedCidr host bits":               {"allowedCidr": "10.0.0.1/8"},
		"allowedCidr ipv6":                    {"allowedCidr": "::/0"},
		"bucketName":                          {"bucketName": "Aircraft_Data"},
		"noncurrentVersionDays":               {"noncurrentVersionDays": "0"},
		"noncurrentVersionDays not a number":  {"noncurrentVersionDays": "ten"},
		"backupRetentionDays fraction":        {"backupRetentionDays": 1.5},
		"backupRetentionDays":                 {"backupRetentionDays": "36"},
		"backupRetentionDays prod":            {"stage": "prod", "backupRetentionDays": "6"},
		"logRetentionDays":                    {"logRetentionDays": "31"},
		"domainName":                          {"domainName": "not a domain"},
		"hostedZoneId alone":                  {"hostedZoneId": "Z123456ABCDEF"},
		"acmeEmail alone":                     {"acmeEmail": "ops@example.com"},
		"acmeEmail injection":                 {"domainName": "a.example.com", "acmeEmail": "a@b.c;reboot"},
		"alarmEmail":                          {"alarmEmail": "ops at example.com"},
		"vpcId":                               {"vpcId": "vpc1", "availabilityZones": "us-east-1a,us-east-1b", "publicSubnetIds": "subnet-0a1b2c3d,subnet-1a1b2c3d", "isolatedSubnetIds": "subnet-2a1b2c3d,subnet-3a1b2c3d"},
		"availabilityZones one":               {"vpcId": "vpc-0a1b2c3d", "availabilityZones": "us-east-1a", "publicSubnetIds": "subnet-0a1b2c3d", "isolatedSubnetIds": "subnet-2a1b2c3d"},
		"publicSubnetIds count":               {"vpcId": "vpc-0a1b2c3d", "availabilityZones": "us-east-1a,us-east-1b", "publicSubnetIds": "subnet-0a1b2c3d", "isolatedSubnetIds": "subnet-2a1b2c3d,subnet-3a1b2c3d"},
		"isolatedSubnetIds bad":               {"vpcId": "vpc-0a1b2c3d", "availabilityZones": "us-east-1a,us-east-1b", "publicSubnetIds": "subnet-0a1b2c3d,subnet-1a1b2c3d", "isolatedSubnetIds": "sn-2,subnet-3a1b2c3d"},
		"availabilityZones without vpcId":     {"availabilityZones": "us-east-1a,us-east-1b"},
		"mongoUriSecretArn":                   {"mongoUriSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mongo"},
		"instances 0":                         {"instances": "0"},
		"instances too many":                  {"instances": "21", "certificateArn": testCertArn},
		"instances not a number":              {"instances": "three"},
		"minInstances single":                 {"minInstances": "1"},
		"maxInstances single":                 {"maxInstances": "3"},
		"certificateArn single":               {"certificateArn": testCertArn},
		"accessLogDays single":                {"accessLogDays": "30"},
		"minInstances above instances":        {"instances": "2", "minInstances": "3", "certificateArn": testCertArn},
		"minInstances 0":                      {"instances": "2", "minInstances": "0", "certificateArn": testCertArn},
		"maxInstances below instances":        {"instances": "3", "maxInstances": "2", "certificateArn": testCertArn},
		"maxInstances too many":               {"instances": "3", "maxInstances": "21", "certificateArn": testCertArn},
		"certificateArn":                      {"instances": "2", "certificateArn": "arn:aws:iam::123456789012:server-certificate/x"},
		"instances without a certificate":     {"instances": "2"},
		"instances with a domain, no zone":    {"instances": "2", "domainName": "api.example.com"},
		"acmeEmail with instances":            {"instances": "2", "certificateArn": testCertArn, "domainName": "a.example.com", "acmeEmail": "ops@example.com"},
		"accessLogDays":                       {"instances": "2", "certificateArn": testCertArn, "accessLogDays": "0"},
		"allowedCidr open in prod":            {"stage": "prod"},
		"allowOpenIngress not a bool":         {"allowOpenIngress": "yes"},
		"mongoUriSecretArn without mongoCidr": {"mongoUriSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mongo-AbC123"},
		"mongoCidr without Mongo":             {"mongoCidr": "192.0.2.0/24"},
		"mongoCidr host bits":                 {"mongoUriSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mongo-AbC123", "mongoCidr": "192.0.2.1/24"},
		"domainName without zone or address":  {"domainName": "api.example.com"},
		"elasticIpAllocationId":               {"domainName": "api.example.com", "elasticIpAllocationId": "eip-123"},
		"elasticIpAllocationId self-signed":   {"elasticIpAllocationId": "eipalloc-0123456789abcdef0"},
		"elasticIpAllocationId with a zone":   {"domainName": "api.example.com", "hostedZoneId": "Z123456ABCDEF", "elasticIpAllocationId": "eipalloc-0123456789abcdef0"},
		"firstCreate in dev":                  {"firstCreate": "true"},
	} {
		if _, err := FromContext(ctx); err == nil {
			t.Errorf("%s: %v accepted", name, ctx)
		} else if !strings.Contains(err.Error(), strings.Fields(name)[0]) {
			t.Errorf("%s: error %q does not name the key", name, err)
		}
	}
}

func TestConfigAcceptsTheGatesWayOut(t *testing.T) {
	for name, ctx := range map[string]map[string]any{
		"prod, a narrow CIDR":      {"stage": "prod", "allowedCidr": "203.0.113.0/24"},
		"prod, public on purpose":  {"stage": "prod", "allowOpenIngress": true},
		"ACME, a Route 53 zone":    {"domainName": "api.example.com", "hostedZoneId": "Z123456ABCDEF"},
		"ACME, a pre-allocated IP": {"domainName": "api.example.com", "elasticIpAllocationId": "eipalloc-0123456789abcdef0"},
		"prod first create":        {"stage": "prod", "allowedCidr": "203.0.113.0/24", "firstCreate": "true"},
	} {
		if _, err := FromContext(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the context table of docs/infra.md from the table of keys")

// docs/infra.md's table of context keys sits between these two lines.
const (
	contextTableBegin = "<!-- context keys: generated from infra/config/keys.go (go -C infra test ./config -run TestContextTable -update) -->\n"
	contextTableEnd   = "<!-- context keys: end -->\n"
)

func TestContextTableIsTheKeys(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "infra.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), contextTableBegin)
	table, after, ok2 := strings.Cut(rest, contextTableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("docs/infra.md: no %q … %q section", contextTableBegin, contextTableEnd)
	}
	want := contextTable()
	if *update {
		if err := os.WriteFile(path, []byte(before+contextTableBegin+want+contextTableEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		table = want
	}
	if table != want {
		t.Errorf("docs/infra.md's context table is not the keys: run go -C infra test ./config -run TestContextTable -update\n--- got\n%s\n--- want\n%s", table, want)
	}
}

// Every field of Config is read by exactly one key of the table.
func TestEveryConfigFieldHasOneKey(t *testing.T) {
	var c Config
	fields := reflect.ValueOf(&c).Elem()
	for i := range fields.NumField() {
		// A value unlike any default: the field's key is the one whose read changes it.
		readers := 0
		for _, k := range c.keys() {
			before := fields.Field(i).Interface()
			var v any = "7"
			switch fields.Field(i).Kind() {
			case reflect.Bool:
				v = "true"
			case reflect.String:
				v = "zz"
			}
			_ = k.read(v)
			if fields.Field(i).Interface() != before {
				readers++
			}
			fields.Field(i).Set(reflect.Zero(fields.Field(i).Type()))
		}
		if readers != 1 {
			t.Errorf("Config.%s is read by %d keys, want 1", fields.Type().Field(i).Name, readers)
		}
	}
}

// The keys CDK itself passes (cdk.json's feature flags, the CLI's aws:cdk:* keys, cdk.context.json's lookups and
// acknowledged notices) are not ours to refuse.
func TestCDKContextKeysAreAccepted(t *testing.T) {
	context := map[string]any{
		"@aws-cdk/core:enablePartitionLiterals": true, "aws:cdk:enable-path-metadata": true,
		"availability-zones:account=123456789012:region=us-east-1": []any{"us-east-1a"},
		"acknowledged-issue-numbers":                               []any{34892}, "instances": "1",
	}
	if err := checkKeys(context); err != nil {
		t.Error(err)
	}
}

const testCertArn = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"

func TestConfigLoadBalanced(t *testing.T) {
	c, err := FromContext(map[string]any{"instances": "3", "certificateArn": testCertArn})
	if err != nil {
		t.Fatal(err)
	}
	if !c.LoadBalanced() || c.Instances != 3 || c.MinInstances != 3 || c.MaxInstances != 4 || c.AccessLogDays != 90 {
		t.Errorf("defaults of instances=3: %+v", c)
	}
	c, err = FromContext(map[string]any{"instances": float64(2), "minInstances": "1", "maxInstances": "6",
		"domainName": "api.example.com", "hostedZoneId": "Z123456ABCDEF", "accessLogDays": "30"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MinInstances != 1 || c.MaxInstances != 6 || c.AccessLogDays != 30 || c.CertificateArn != "" {
		t.Errorf("%+v", c)
	}
	if one, _ := FromContext(map[string]any{"instances": "1"}); one.LoadBalanced() {
		t.Error("instances=1 is load-balanced")
	}
}

// The pipeline's keys: the default workerConcurrency follows the fleet's size, and SQS's and the queue's limits are
// refused at synth.
func TestConfigPipeline(t *testing.T) {
	// A fleet that may grow to 6 instances leaves (84-7-42)/6 = 5 workers.
	if c, err := FromContext(map[string]any{"instances": "3", "maxInstances": "6", "certificateArn": testCertArn}); err != nil || c.WorkerConcurrency != 5 {
		t.Errorf("instances 3, maxInstances 6: workerConcurrency %d (%v), want 5", c.WorkerConcurrency, err)
	}
	if _, err := FromContext(map[string]any{"liveBatchSize": "50", "liveBatchWindowSeconds": "0"}); err == nil {
		t.Error("a batch of 50 without a batching window is accepted: SQS refuses it")
	}
	if _, err := FromContext(map[string]any{"workerConcurrency": "2"}); err == nil {
		t.Error("workerConcurrency 2 is accepted: the queue alone takes 2")
	}
}
