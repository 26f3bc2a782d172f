// Package serve runs the HTTP handler the way the configuration asks: HTTPS
// with given files, a trusted certificate from ACME (golang.org/x/crypto's
// autocert), or a self-signed certificate made at start; plain HTTP only when
// asked for explicitly. It shuts down gracefully: on cancellation it stops
// accepting and drains requests in flight.
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
	Grace        time.Duration // how long to drain requests at shutdown
	Log          *slog.Logger
	// Ready, when set, receives the main listener's address once it listens.
	Ready func(addr net.Addr)
}

// Run serves h until ctx is cancelled, then drains.
func Run(ctx context.Context, h http.Handler, o Options) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
	}
	var redirect http.Handler = toHTTPS(o.Addr)
	mode := "https (self-signed)"
	switch {
	case o.PlainHTTP:
		mode = "http (TLS disabled)"
	case o.ACMEDomain != "":
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(o.ACMEDomain),
			Cache:      autocert.DirCache(o.ACMECacheDir),
			Email:      o.ACMEEmail,
		}
		srv.TLSConfig = m.TLSConfig()
		redirect = m.HTTPHandler(redirect)
		mode = "https (ACME for " + o.ACMEDomain + ")"
	case o.CertFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		mode = "https (" + o.CertFile + ")"
	default:
		cert, err := tlscert.Self([]string{"localhost", "127.0.0.1", "::1"})
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	if srv.TLSConfig != nil {
		srv.TLSConfig.MinVersion = tls.VersionTLS12
	}

	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	o.Log.Info("listening", "addr", ln.Addr().String(), "mode", mode)
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}

	servers := []*http.Server{srv}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if o.RedirectAddr != "" {
		rs := &http.Server{Addr: o.RedirectAddr, Handler: redirect, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, rs)
		o.Log.Info("listening", "addr", o.RedirectAddr, "mode", "http redirect to https")
		go func() { errc <- rs.ListenAndServe() }()
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	o.Log.Info("shutting down: draining requests", "grace", o.Grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), o.Grace)
	defer cancel()
	var errs []error
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
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
