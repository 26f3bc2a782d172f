// Package serve runs the HTTP handler the way the configuration asks: HTTPS with given files, a trusted certificate
// from ACME (golang.org/x/crypto's autocert), or a self-signed certificate made at start; plain HTTP only when asked
// for explicitly. It shuts down gracefully: on cancellation it stops accepting and drains requests in flight.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/acme/autocert"

	"github.com/aircraftdata/platform/app/internal/tlscert"
)

// Options say how to serve.
type Options struct {
	Addr         string // main listener
	RedirectAddr string // optional plain listener: ACME challenges and a redirect to https
	CertFile     string
	KeyFile      string
	ACMEDomain   string
	ACMEEmail    string
	ACMECacheDir string
	PlainHTTP    bool
	Grace        time.Duration // how long requests in flight may run on at shutdown before their contexts are cancelled
	Log          *slog.Logger
	// Ready, when set, receives the main listener's address once it listens.
	Ready func(addr net.Addr)
}

// ErrShutdown is the cause of the cancellation of requests still running when the grace period ends.
var ErrShutdown = errors.New("shutdown")

// cancelWait is how long handlers get to return once their contexts are cancelled; after it their connections are
// closed.
const cancelWait = 5 * time.Second

// Run serves h until ctx is cancelled, then shuts down (see the package documentation). It returns when no handler runs
// any more, or after cancelWait past the grace period if one ignores its context.
func Run(ctx context.Context, h http.Handler, o Options) error {
	// Requests run under a context of their own, cancelled only when the grace period is over.
	reqCtx, cancelRequests := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelRequests(ErrShutdown)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	t, err := chooseTLS(o)
	if err != nil {
		return err
	}
	srv.TLSConfig = t.config

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	o.Log.Info("listening", "addr", ln.Addr().String(), "mode", t.mode)
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}

	servers := []*http.Server{srv}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if o.RedirectAddr != "" {
		rs := &http.Server{
			Addr: o.RedirectAddr, Handler: t.redirect,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
			ErrorLog: srv.ErrorLog,
		}
		servers = append(servers, rs)
		o.Log.Info("listening", "addr", o.RedirectAddr, "mode", "http redirect to https")
		go func() { errc <- rs.ListenAndServe() }()
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	o.Log.Info("shutting down: no new connections, requests in flight may finish", "grace", o.Grace.String())
	if shutdown(servers, o.Grace) == nil {
		return nil
	}
	o.Log.Warn("shutting down: grace period over, cancelling the requests still running")
	cancelRequests(ErrShutdown)
	if err := shutdown(servers, cancelWait); err != nil {
		o.Log.Error("shutting down: requests still running after their cancellation, closing their connections", "waited", cancelWait.String())
		for _, s := range servers {
			_ = s.Close()
		}
		return errors.New("requests ignored their cancellation at shutdown")
	}
	return nil
}

// listenerTLS is how the main listener is served.
type listenerTLS struct {
	config   *tls.Config  // nil: plain HTTP
	redirect http.Handler // what the redirect listener serves: to HTTPS, after ACME's http-01 challenges if any
	mode     string       // for the log
}

// chooseTLS returns the TLS that o asks for: none when PlainHTTP, a certificate from ACME for ACMEDomain, the pair of
// CertFile and KeyFile, or else a self-signed certificate made now; TLS 1.2 at least.
func chooseTLS(o Options) (listenerTLS, error) {
	t := listenerTLS{redirect: toHTTPS(o.Addr), mode: "https (self-signed)"}
	switch {
	case o.PlainHTTP:
		t.mode = "http (TLS disabled)"
		return t, nil
	case o.ACMEDomain != "":
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(o.ACMEDomain),
			Cache:      autocert.DirCache(o.ACMECacheDir),
			Email:      o.ACMEEmail,
		}
		t.config = m.TLSConfig()
		t.redirect = m.HTTPHandler(t.redirect)
		t.mode = "https (ACME for " + o.ACMEDomain + ")"
	case o.CertFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return t, fmt.Errorf("tls: %w", err)
		}
		t.config = &tls.Config{Certificates: []tls.Certificate{cert}}
		t.mode = "https (" + o.CertFile + ")"
	default:
		cert, err := tlscert.Self([]string{"localhost", "127.0.0.1", "::1"})
		if err != nil {
			return t, err
		}
		t.config = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	t.config.MinVersion = tls.VersionTLS12
	return t, nil
}

// shutdown stops the servers and waits up to d for their connections to go idle.
func shutdown(servers []*http.Server, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// toHTTPS redirects to the same host and path on the HTTPS listener at addr.
func toHTTPS(addr string) http.HandlerFunc {
	_, port, _ := net.SplitHostPort(addr)
	return func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if port != "" && port != "443" {
			host = net.JoinHostPort(host, port)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusMovedPermanently)
	}
}
