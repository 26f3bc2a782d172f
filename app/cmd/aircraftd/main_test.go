package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aircraftdata/platform/app/internal/config"
)

func TestGencert(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	var out bytes.Buffer
	args := []string{"aircraftd", "gencert", "-cert", cert, "-key", key, "-hosts", "ec2-1-2-3-4.compute.amazonaws.com,1.2.3.4"}
	if err := run(context.Background(), args, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(cert)
	block, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.VerifyHostname("1.2.3.4") != nil || c.VerifyHostname("ec2-1-2-3-4.compute.amazonaws.com") != nil {
		t.Errorf("certificate names %v %v", c.DNSNames, c.IPAddresses)
	}
	// A second call keeps the pair: a restart must not change the published certificate.
	if err := run(context.Background(), args, func(string) string { return "" }, &out); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(cert)
	if !bytes.Equal(data, again) || !strings.Contains(out.String(), "left as they are") {
		t.Error("gencert replaced an existing pair")
	}
}

func TestRunRejectsBadConfigAndCommands(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"aircraftd", "serve-please"}, os.Getenv, &out); err == nil {
		t.Error("unknown command accepted")
	}
	env := map[string]string{"TLS_CERT_FILE": "only-half"}
	err := run(context.Background(), []string{"aircraftd"}, func(k string) string { return env[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), "TLS_KEY_FILE") {
		t.Errorf("bad configuration: %v", err)
	}
	err = run(context.Background(), []string{"aircraftd"}, func(k string) string { return map[string]string{"API_TOKEN": "t"}[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("no database: %v", err)
	}
}

func TestAuthFailsClosed(t *testing.T) {
	for _, c := range []struct {
		token   string
		disable bool
		want    []string // nil: refused
		log     string
	}{
		{token: "", want: nil},
		{token: " \n\t", want: nil},
		{token: ", ,", want: nil},
		{token: "abc", want: []string{"abc"}, log: `"tokens":1`},
		{token: "new, old\n", want: []string{"new", "old"}, log: `"tokens":2`},
		{token: "", disable: true, want: []string{}, log: "auth: off (AUTH_DISABLE=true)"},
		{token: "abc", disable: true, want: []string{}, log: "auth: off"},
	} {
		var logs bytes.Buffer
		got, err := authTokens(&config.Config{APIToken: c.token, AuthDisable: c.disable}, newLogger(&logs, "info"))
		switch {
		case c.want == nil && (err == nil || !strings.Contains(err.Error(), "AUTH_DISABLE")):
			t.Errorf("%q: %v %v, want a refusal naming AUTH_DISABLE", c.token, got, err)
		case c.want != nil && (err != nil || len(got) != len(c.want) || !strings.Contains(logs.String(), c.log)):
			t.Errorf("%q disable=%v: %q %v, log %s", c.token, c.disable, got, err, logs.String())
		}
		for i := range c.want {
			if got[i] != c.want[i] {
				t.Errorf("%q: tokens %q, want %q", c.token, got, c.want)
			}
		}
	}
}
