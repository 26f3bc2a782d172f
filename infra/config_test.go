package main

import (
	"strings"
	"testing"
)

func contextOf(kv map[string]any) func(string) any {
	return func(k string) any { return kv[k] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := ParseConfig(contextOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{StackName: "AircraftPlatform", Stage: "dev", InstanceType: "t2.micro", AllowedCidr: "0.0.0.0/0",
		NoncurrentVersionDays: 30, BackupRetentionDays: 1, LogRetentionDays: 30}
	if c != want {
		t.Errorf("defaults %+v, want %+v", c, want)
	}
	if c.TLSMode() != "selfsigned" || c.ExternalMongo() {
		t.Errorf("TLS %s, external Mongo %v", c.TLSMode(), c.ExternalMongo())
	}
	prod, _ := ParseConfig(contextOf(map[string]any{"stage": "prod"}))
	if prod.BackupRetentionDays != 7 {
		t.Errorf("prod backups %d", prod.BackupRetentionDays)
	}
}

func TestConfigAcceptsCLIStringsAndJSONNumbers(t *testing.T) {
	c, err := ParseConfig(contextOf(map[string]any{
		"stackName": "AircraftAlice", "noncurrentVersionDays": "7", "backupRetentionDays": float64(14), "logRetentionDays": "365",
		"domainName": "API.Example.com.", "hostedZoneId": "Z123456ABCDEF", "acmeEmail": "ops@example.com",
		"mongoUriSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mongo-AbC123", "instanceType": "t4g.small",
	}))
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
		"stackName":                          {"stackName": "1bad"},
		"stage":                              {"stage": "staging"},
		"instanceType":                       {"instanceType": "micro"},
		"allowedCidr":                        {"allowedCidr": "10.0.0.1"},
		"allowedCidr host bits":              {"allowedCidr": "10.0.0.1/8"},
		"allowedCidr ipv6":                   {"allowedCidr": "::/0"},
		"bucketName":                         {"bucketName": "Aircraft_Data"},
		"noncurrentVersionDays":              {"noncurrentVersionDays": "0"},
		"noncurrentVersionDays not a number": {"noncurrentVersionDays": "ten"},
		"backupRetentionDays fraction":       {"backupRetentionDays": 1.5},
		"backupRetentionDays":                {"backupRetentionDays": "36"},
		"logRetentionDays":                   {"logRetentionDays": "31"},
		"domainName":                         {"domainName": "not a domain"},
		"hostedZoneId alone":                 {"hostedZoneId": "Z123456ABCDEF"},
		"acmeEmail alone":                    {"acmeEmail": "ops@example.com"},
		"acmeEmail injection":                {"domainName": "a.example.com", "acmeEmail": "a@b.c;reboot"},
		"mongoUriSecretArn":                  {"mongoUriSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mongo"},
	} {
		if _, err := ParseConfig(contextOf(ctx)); err == nil {
			t.Errorf("%s: %v accepted", name, ctx)
		} else if !strings.Contains(err.Error(), strings.Fields(name)[0]) {
			t.Errorf("%s: error %q does not name the key", name, err)
		}
	}
}

func TestContextKeysAreDocumented(t *testing.T) {
	doc := readDoc(t, "docs/infra.md")
	for _, k := range contextKeys {
		if !strings.Contains(doc, "`"+k+"`") {
			t.Errorf("context key %s is not in docs/infra.md", k)
		}
	}
}
