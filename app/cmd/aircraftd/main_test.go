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
	err = run(context.Background(), []string{"aircraftd"}, func(string) string { return "" }, &out)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("no database: %v", err)
	}
}
