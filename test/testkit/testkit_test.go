package testkit

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
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRepoRoot(t *testing.T) {
	for _, p := range []string{"cdk.json", "go.work", "app/cmd/aircraftd", "infra/host/bootstrap", "test/testkit/testkit.go"} {
		if _, err := os.Stat(filepath.Join(RepoRoot(), p)); err != nil {
			t.Errorf("RepoRoot %s has no %s: %v", RepoRoot(), p, err)
		}
	}
}

func TestSamplesDir(t *testing.T) {
	want := filepath.Join(filepath.Dir(RepoRoot()), "shared", "data", "readsb-hist")
	t.Setenv(SamplesDirEnv, "")
	if got := SamplesDir(); filepath.Clean(got) != want {
		t.Errorf("SamplesDir() = %s, want %s", got, want)
	}
	t.Setenv(SamplesDirEnv, "/elsewhere/samples")
	if got := SamplesDir(); got != "/elsewhere/samples" {
		t.Errorf("with %s set: %s", SamplesDirEnv, got)
	}
}

// A pinned transport trusts the certificate it pins and nothing else: not the system roots, not another pin.
func TestPinnedTransport(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	pinned, err := PinnedPool(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	if err != nil {
		t.Fatal(err)
	}
	otherPin, err := PinnedPool(selfSigned(t))
	if err != nil {
		t.Fatal(err)
	}
	get := func(tr *http.Transport, url string) error {
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(PinnedTransport(pinned), srv.URL); err != nil {
		t.Errorf("the pinned server: %v", err)
	}
	if err := get(PinnedTransport(otherPin), srv.URL); err == nil {
		t.Error("a transport pinning another certificate accepted the server's")
	}
	if err := get(PinnedTransport(nil), srv.URL); err == nil {
		t.Error("the system roots accepted the self-signed certificate")
	}
}

func TestPinnedPoolRefusesWhatIsNoCertificate(t *testing.T) {
	for name, in := range map[string]string{
		"placeholder": "pending: the instance writes its certificate here at first boot",
		"key only":    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
		"bad DER":     "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	} {
		if _, err := PinnedPool([]byte(in)); err == nil {
			t.Errorf("%s: accepted as a certificate", name)
		}
	}
}

// selfSigned is a new self-signed certificate for 127.0.0.1, as PEM.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
