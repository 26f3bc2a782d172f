package metrics

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Listener serves the metrics on a listener of their own, never on the service's public one.
type Listener struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Listen binds addr and serves m's metrics at Path, to scrapes that send token as a bearer token ("" : none asked; the
// caller allows that on loopback only). Binding fails at once: a start that cannot serve its metrics fails loudly.
func (m *Metrics) Listen(addr, token string, log *slog.Logger) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	h := m.Handler()
	mux.HandleFunc("GET "+Path, func(w http.ResponseWriter, r *http.Request) {
		if token != "" && !bearer(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics: a bearer token (METRICS_TOKEN) is required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
	l := &Listener{ln: ln, done: make(chan error, 1), srv: &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		IdleTimeout: time.Minute, MaxHeaderBytes: 8 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() { l.done <- l.srv.Serve(ln) }()
	log.Info("metrics: serving "+Path, "addr", ln.Addr().String(), "token", token != "")
	return l, nil
}

// Addr is the address the listener is bound to.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops the listener, letting a scrape under way finish within ctx.
func (l *Listener) Close(ctx context.Context) error {
	err := l.srv.Shutdown(ctx)
	if serr := <-l.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func bearer(r *http.Request, token string) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}
