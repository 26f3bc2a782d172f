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
	"net/http"
	"time"

	"github.com/aircraftdata/platform/test/local"
	"github.com/aircraftdata/platform/test/testkit"
)

// Service is a running aircraftd and an HTTPS client that trusts its certificate.
type Service struct {
	*local.Service
	Client *http.Client
}

// Start runs bin on stack with extra settings on top of the instance's, its files under dir, and waits until it is
// ready (local.Service.Start).
func Start(ctx context.Context, stack *local.Stack, bin, dir string, extra map[string]string) (*Service, error) {
	svc, err := stack.NewService(ctx, bin, dir, extra)
	if err != nil {
		return nil, err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, err
	}
	tr := testkit.PinnedTransport(svc.Pinned)
	tr.MaxIdleConnsPerHost = 256
	return &Service{Service: svc, Client: &http.Client{Transport: tr}}, nil
}

// Call sends an authenticated request, with body as JSON unless nil, and decodes the 200 answer into v.
func (s *Service) Call(ctx context.Context, method, path string, body, v any) error {
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
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, v)
}

// Stop ends the service as systemd does (SIGTERM, drained), killing it after 30 s.
func (s *Service) Stop() error { return s.Service.Stop(30 * time.Second) }
