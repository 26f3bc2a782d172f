// Package testkit holds the helpers that every suite of the test module shares, and the benchmarks (bench/) too: where
// the repository and the samples are, and HTTPS that trusts only a pinned certificate. It imports only the standard
// library, so that a user of it (bench/) does not inherit terratest or a store's client.
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
)

// RepoRoot is the repository root, where cdk.json is, app/ and infra/: the nearest folder at or above the working
// directory that holds cdk.json (a test runs in its package's folder, a benchmark command in bench/). The source file's
// own path would not do: make builds with -trimpath, as the release does. It panics outside the repository.
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "cdk.json")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("testkit: no cdk.json in any parent folder of the working directory: run from inside the repository")
		}
		dir = parent
	}
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
