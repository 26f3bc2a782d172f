package serve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aircraftdata/platform/app/internal/tlscert"
)

// start serves h with o until the test ends and returns the address.
func start(t *testing.T, h http.Handler, o Options) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Grace == 0 {
		o.Grace = 5 * time.Second
	}
	ready := make(chan net.Addr, 1)
	o.Ready = func(a net.Addr) { ready <- a }
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, h, o) }()
	select {
	case a := <-ready:
		stop = func() error { cancel(); return <-errc }
		t.Cleanup(func() { cancel() })
		return a.String(), stop
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	return "", nil
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })

func TestSelfSignedByDefault(t *testing.T) {
	addr, _ := start(t, hello, Options{})
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // only to read the certificate
	if err != nil {
		t.Fatalf("not TLS: %v", err)
	}
	defer conn.Close()
	cert := conn.ConnectionState().PeerCertificates[0]
	if cert.Issuer.String() != cert.Subject.String() || !slicesContain(cert.DNSNames, "localhost") {
		t.Errorf("want a self-signed certificate for localhost, got %s / %v", cert.Issuer, cert.DNSNames)
	}
	// A plain request to a TLS listener gets net/http's 400, never the handler.
	if resp, err := http.Get("http://" + addr); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) == "hello" {
			t.Error("served plain HTTP without TLS_DISABLE")
		}
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestCertificateFilesArePinnable(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := tlscert.WriteFiles(cert, key, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode().Perm())
	}
	addr, _ := start(t, hello, Options{CertFile: cert, KeyFile: key})
	pemBytes, _ := os.ReadFile(cert)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + addr)
	if err != nil {
		t.Fatalf("pinned certificate not accepted: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Errorf("body %q", body)
	}
	// A client that trusts only the system roots refuses it.
	if _, err := http.Get("https://" + addr); err == nil {
		t.Error("a self-signed certificate was trusted without pinning")
	}
}

func TestPlainHTTPWhenAsked(t *testing.T) {
	addr, _ := start(t, hello, Options{PlainHTTP: true})
	resp, err := http.Get("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

// freeAddr returns a local address free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// dialRedirect connects to the redirect listener, which starts just after the main one.
func dialRedirect(t *testing.T, addr string) net.Conn {
	t.Helper()
	for range 50 {
		if c, err := net.Dial("tcp", addr); err == nil {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("redirect listener %s: not listening", addr)
	return nil
}

func TestRedirectToHTTPS(t *testing.T) {
	addr, redirectAddr := freeAddr(t), freeAddr(t)
	start(t, hello, Options{Addr: addr, RedirectAddr: redirectAddr})
	dialRedirect(t, redirectAddr).Close()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var resp *http.Response
	var err error
	if resp, err = c.Get("http://" + redirectAddr + "/api/v1/health?x=1"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusMovedPermanently || loc != "https://"+addr+"/api/v1/health?x=1" {
		t.Errorf("%d Location %q", resp.StatusCode, loc)
	}
}

// A client that never finishes its request headers is disconnected by both listeners (ReadHeaderTimeout) instead of
// holding a connection and its goroutine for as long as it likes.
func TestSlowClientsAreDisconnected(t *testing.T) {
	addr, redirectAddr := freeAddr(t), freeAddr(t)
	start(t, hello, Options{Addr: addr, RedirectAddr: redirectAddr, PlainHTTP: true})
	conns := map[string]net.Conn{"main": dialRedirect(t, addr), "redirect": dialRedirect(t, redirectAddr)}
	errc := make(chan error, len(conns))
	for name, c := range conns {
		go func() {
			defer c.Close()
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil { // no final CRLF, ever
				errc <- fmt.Errorf("%s: %w", name, err)
				return
			}
			c.SetReadDeadline(time.Now().Add(time.Minute)) // the test's own bound, far above the server's
			b, err := io.ReadAll(c)
			if err != nil {
				errc <- fmt.Errorf("%s: still connected after a minute (%v, read %q)", name, err, b)
				return
			}
			errc <- nil // closed by the server (it may say 408 first)
		}()
	}
	for range conns {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

func TestShutdownDrainsRequests(t *testing.T) {
	entered := make(chan struct{})
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "finished")
	})
	addr, stop := start(t, slow, Options{PlainHTTP: true})
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr)
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if body := <-got; body != "finished" {
		t.Errorf("request in flight at shutdown got %q", body)
	}
	if _, err := http.Get("http://" + addr); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("still accepting after shutdown: %v", err)
	}
}

func TestRequestsPastTheGraceAreCancelledWithACause(t *testing.T) {
	entered := make(chan struct{})
	cause := make(chan error, 1)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // a request that would run for ever
		cause <- context.Cause(r.Context())
		http.Error(w, "cancelled", http.StatusServiceUnavailable)
	})
	addr, stop := start(t, slow, Options{PlainHTTP: true, Grace: 200 * time.Millisecond})
	go func() {
		if resp, err := http.Get("http://" + addr); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	begun := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// Run returned only after the handler had: its cause is there already.
	select {
	case c := <-cause:
		if !errors.Is(c, ErrShutdown) {
			t.Errorf("the request's context was cancelled with %v, want ErrShutdown", c)
		}
	default:
		t.Error("Run returned while a handler was still running")
	}
	t.Logf("shutdown took %v with a 200ms grace", time.Since(begun))
}
