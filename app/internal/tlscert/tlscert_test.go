package tlscert

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

func TestPoolTrustsTheWrittenCertificate(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := WriteFiles(cert, key, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	pool, err := Pool(cert)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(cert)
	block, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("the pool does not trust the certificate it was read from: %v", err)
	}

	// A certificate the pool was not read from is not trusted.
	other, _, err := Generate([]string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	block, _ = pem.Decode(other)
	oc, _ := x509.ParseCertificate(block.Bytes)
	if _, err := oc.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err == nil {
		t.Error("the pool trusts a certificate it was not read from")
	}
}

func TestPoolRefusesAFileWithoutCertificates(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pem")
	_, k, err := Generate([]string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, k, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{key, filepath.Join(dir, "missing.pem")} {
		if _, err := Pool(f); err == nil {
			t.Errorf("Pool(%s) gave no error", filepath.Base(f))
		}
	}
}
