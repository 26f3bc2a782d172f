// Package testkit holds the helpers that every suite of the test module shares, and the benchmarks (bench/) too: where
// the repository and the samples are, and HTTPS that trusts only a pinned certificate. It imports only the standard
// library and infra/appbuild (itself only the standard library), so that a user of it (bench/) does not inherit
// terratest, the CDK or a store's client.
//
// Starting aircraftd is package local's Stack.NewService and Service.Start: it needs the local stack.
package testkit

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/aircraftdata/platform/infra/appbuild"
)

// RepoRoot is the repository root, where cdk.json is, app/ and infra/ (appbuild.RepoRoot: found from the working
// directory, since make builds with -trimpath). It panics outside the repository.
func RepoRoot() string {
	root, err := appbuild.RepoRoot()
	if err != nil {
		panic("testkit: " + err.Error() + ": run from inside the repository")
	}
	return root
}

// SamplesDirEnv overrides where the readsb-hist samples are read from.
const SamplesDirEnv = "E2E_SAMPLES_DIR"

// SamplesDir is the folder of the real readsb-hist samples: $E2E_SAMPLES_DIR, else ../shared/data/readsb-hist beside
// the repository (where app/ reads them too).
func SamplesDir() string {
	if dir := os.Getenv(SamplesDirEnv); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(), "..", "shared", "data", "readsb-hist")
}

// PinnedPool returns a pool that holds only the PEM certificate(s) given: the service's self-signed certificate,
// trusted as its own root.
func PinnedPool(pemBytes []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := pemBytes; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pinned certificate: %w", err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("pinned certificate: no PEM certificate found")
	}
	return pool, nil
}

// TLSConfig trusts only roots (or the system roots when nil); certificates are always verified.
func TLSConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}

// PinnedTransport is an HTTP transport whose TLS trusts only roots (TLSConfig). Its other fields are http.Transport's
// zero values, for the caller to set (keep-alives, idle connections, dialer).
func PinnedTransport(roots *x509.CertPool) *http.Transport {
	return &http.Transport{TLSClientConfig: TLSConfig(roots)}
}
