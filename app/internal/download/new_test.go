package download

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/aircraftdata/platform/app/internal/download/downloadtest"
)

// Workers and Lease are settings (package config owns their defaults): New refuses a Config without them rather than
// choosing values of its own.
func TestNewRefusesUnsetSettings(t *testing.T) {
	ok := Config{Records: &downloadtest.Store{}, Claims: &downloadtest.Store{}, S3: s3.New(s3.Options{Region: "us-east-1"}), Bucket: "b", Workers: 2, Lease: time.Minute}
	for name, unset := range map[string]func(*Config){
		"Workers": func(c *Config) { c.Workers = 0 },
		"Lease":   func(c *Config) { c.Lease = 0 },
	} {
		c := ok
		c.Root = t.TempDir()
		unset(&c)
		if d, err := New(c); err == nil {
			d.Close()
			t.Errorf("New without %s: no error", name)
		}
	}
	c := ok
	c.Root = t.TempDir()
	d, err := New(c)
	if err != nil {
		t.Fatalf("New with every setting: %v", err)
	}
	d.Close()
}
