package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aircraftdata/platform/test/testkit"
)

// Known values: the check value of each CRC for "123456789" (the CRC catalogue), and digests from their RFCs.
func TestChecksumOf(t *testing.T) {
	check := []byte("123456789")
	for alg, want := range map[string]string{
		"crc32":     "crc32:y/Q5Jg==",         // 0xcbf43926
		"crc32c":    "crc32c:4waSgw==",        // 0xe3069283
		"crc64nvme": "crc64nvme:rosUhgp5mIg=", // 0xae8b14860a799888
		"md5":       "md5:25f9e794323b453885f5181f1b624d0b",
		"sha256":    "sha256:FeKw08M4keuw8e9gnsQZQgwg4yDOlMZfvIwzEkSOsiU=",
	} {
		if got, ok := ChecksumOf(alg, check); !ok || got != want {
			t.Errorf("%s = %q, want %q", alg, got, want)
		}
	}
	if err := VerifyChecksum("crc32c:4waSgw==", check); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"crc32c:AAAAAA==", "size-only", "adler:1", ""} {
		if err := VerifyChecksum(bad, check); err == nil {
			t.Errorf("%q verified", bad)
		}
	}
}

func TestRunNames(t *testing.T) {
	r := NewRun(time.Date(2026, 11, 24, 8, 4, 12, 0, time.FixedZone("x", 3600)))
	if !regexp.MustCompile(`^20261124t070412-[0-9a-f]{6}$`).MatchString(r.ID) {
		t.Errorf("run id %q", r.ID)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`).MatchString(r.Lane()) {
		t.Errorf("lane %q is not a valid lane id", r.Lane())
	}
	if !strings.HasPrefix(r.FlightPrefix(), r.Prefix()) || !strings.HasPrefix(r.LanePrefix(), r.Prefix()) ||
		strings.HasPrefix(r.FlightPrefix(), r.LanePrefix()) || strings.HasPrefix(r.LanePrefix(), r.FlightPrefix()) {
		t.Errorf("prefixes overlap: %q %q", r.FlightPrefix(), r.LanePrefix())
	}
	if a, b := NewRun(time.Now()), NewRun(time.Now()); a == b {
		t.Error("two runs in the same second have the same id")
	}
}

// selfSigned makes a certificate like `aircraftd gencert` does: ECDSA, self-signed, for 127.0.0.1 and localhost.
func selfSigned(t *testing.T) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aircraftd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key
}

// The client trusts the pinned certificate and nothing else.
func TestPinnedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/health" {
			_, _ = w.Write([]byte(`{"status":"ok","version":"t"}`))
			return
		}
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(r.Header.Get("Authorization")))
	}))
	defer srv.Close()
	pinned, err := testkit.PinnedPool(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	if err != nil {
		t.Fatal(err)
	}
	tg := Target{BaseURL: srv.URL, RootCAs: pinned, Token: "tok"}
	if err := tg.WaitHealthy(t.Context(), t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if resp := tg.MustCall(t, http.MethodPost, "/x", map[string]int{"a": 1}, WithToken); resp.Status != http.StatusTeapot || resp.Body != "Bearer tok" {
		t.Errorf("with token: %s", resp)
	}
	if resp := tg.MustCall(t, http.MethodPost, "/x", nil, NoAuth); resp.Body != "" {
		t.Errorf("no token: %s", resp)
	}

	// Another certificate (here: the system roots, then a pin of some other certificate) is refused.
	other, _ := selfSigned(t)
	otherPool, err := testkit.PinnedPool(other)
	if err != nil {
		t.Fatal(err)
	}
	for name, pool := range map[string]*x509.CertPool{"system roots": nil, "another pin": otherPool} {
		if _, err := (Target{BaseURL: srv.URL, RootCAs: pool}).Call(t, http.MethodGet, "/api/v1/health", nil, NoAuth); err == nil {
			t.Errorf("%s: the test server's certificate was accepted", name)
		}
	}
	if _, err := testkit.PinnedPool([]byte("pending: the instance writes its certificate here at first boot")); err == nil {
		t.Error("a placeholder was accepted as a certificate")
	}
}
