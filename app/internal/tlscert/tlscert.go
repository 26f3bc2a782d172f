// Package tlscert makes self-signed TLS certificates: the service's default when it is given no certificate, and what
// the instance's first boot and the local stack publish so that clients can pin it. It also reads the PEM files clients
// trust (a pinned certificate, a CA bundle).
package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// validity is how long a generated certificate is valid.
const validity = 5 * 365 * 24 * time.Hour

// Generate returns a PEM certificate and key for hosts (names or IPs). The certificate is its own CA, so a client can
// trust exactly it.
func Generate(hosts []string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("tlscert: at least one host is needed")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"aircraft data platform (self-signed)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// Self returns a self-signed certificate for hosts, in memory.
func Self(hosts []string) (tls.Certificate, error) {
	c, k, err := Generate(hosts)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(c, k)
}

// WriteFiles writes a new pair to certFile (0644) and keyFile (0600) unless both exist already; it reports whether it
// wrote them.
func WriteFiles(certFile, keyFile string, hosts []string) (bool, error) {
	if exists(certFile) && exists(keyFile) {
		return false, nil
	}
	c, k, err := Generate(hosts)
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		return false, fmt.Errorf("tlscert: %w", err)
	}
	if err := os.WriteFile(certFile, c, 0o644); err != nil {
		return false, fmt.Errorf("tlscert: %w", err)
	}
	return true, nil
}

// Pool reads the PEM certificates of file into a pool for tls.Config's RootCAs. A file that holds none is an error, not
// an empty pool.
func Pool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err // names the file
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
