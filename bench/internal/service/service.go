// Package service runs aircraftd for a benchmark the way the local e2e suite runs it (package local of the test
// module): the release build, on a stack of the benchmark's own, with the instance's environment file and a certificate
// made by the binary, which the client pins.
package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"time"

	"github.com/aircraftdata/platform/test/local"
	"github.com/aircraftdata/platform/test/testkit"
)

// Service is a running aircraftd and an HTTPS client that trusts its certificate.
type Service struct {
	*local.Service
	Client *http.Client
	// MetricsURL is where the service serves its metrics (http://127.0.0.1:port/metrics); empty with METRICS_ADDR=off.
	MetricsURL string
}

// Start runs bin on stack with extra settings on top of the instance's, its files under dir, and waits until it is
// ready (local.Service.Start). Its metrics listen on a free loopback port (MetricsURL) unless extra sets METRICS_ADDR.
func Start(ctx context.Context, stack *local.Stack, bin, dir string, extra map[string]string) (*Service, error) {
	env := maps.Clone(extra)
	if env == nil {
		env = map[string]string{}
	}
	if env["METRICS_ADDR"] == "" {
		addr, err := local.FreeAddr()
		if err != nil {
			return nil, err
		}
		env["METRICS_ADDR"] = addr
	}
	svc, err := stack.NewService(ctx, bin, dir, env)
	if err != nil {
		return nil, err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	tr := testkit.PinnedTransport(svc.Pinned)
	tr.MaxIdleConnsPerHost = 256
	s := &Service{Service: svc, Client: &http.Client{Transport: tr}}
	if env["METRICS_ADDR"] != "off" {
		s.MetricsURL = "http://" + env["METRICS_ADDR"] + "/metrics"
	}
	return s, nil
}

// Call sends an authenticated request, with body as JSON unless nil, and decodes the 200 answer into v.
func (s *Service) Call(ctx context.Context, method, path string, body, v any) error {
	return s.CallStatus(ctx, method, path, body, http.StatusOK, v)
}

// CallStatus is Call for an answer of status want (201 for what a POST creates).
func (s *Service) CallStatus(ctx context.Context, method, path string, body any, want int, v any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL(path), r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, v)
}

// Stop ends the service as systemd does (SIGTERM, drained), killing it after 30 s.
func (s *Service) Stop() error { return s.Service.Stop(30 * time.Second) }
