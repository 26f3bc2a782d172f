package service

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Scrape reads url (a /metrics page) as Prometheus or the CloudWatch agent scrapes a target: once now, then every
// interval, each answer read whole, until stop is called. It fails when the first scrape does; stop returns the number
// of scrapes and the first failure of the later ones. A benchmark of the service with its metrics on scrapes them
// during its timed runs, so that the figure includes serving them and not only counting.
func Scrape(ctx context.Context, client *http.Client, url string, interval time.Duration) (stop func() (int, error), err error) {
	if err := scrapeOnce(ctx, client, url); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg    sync.WaitGroup
		n     = 1
		first error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := scrapeOnce(ctx, client, url); err != nil {
				if ctx.Err() != nil {
					return // stopped mid-scrape
				}
				if first == nil {
					first = err
				}
				continue
			}
			n++
		}
	}()
	return func() (int, error) {
		cancel()
		wg.Wait()
		return n, first
	}, nil
}

// scrapeOnce GETs url and reads the answer, which must be 200.
func scrapeOnce(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("scrape %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return nil
}

// ScrapeMetrics scrapes s's metrics every interval (Scrape); a service with METRICS_ADDR=off, or interval 0, is not
// scraped (stop returns 0 scrapes).
func (s *Service) ScrapeMetrics(ctx context.Context, interval time.Duration) (stop func() (int, error), err error) {
	if s.MetricsURL == "" || interval <= 0 {
		return func() (int, error) { return 0, nil }, nil
	}
	return Scrape(ctx, http.DefaultClient, s.MetricsURL, interval)
}
