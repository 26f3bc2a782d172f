// Package ferret runs our FerretDB command (scripts/cmd/ferretdb, SQLite backend) as the stack's MongoDB-wire store.
package ferret

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/aircraftdata/platform/scripts/internal/proc"
)

// Addr is where FerretDB listens; URL is the matching MONGODB_URL.
const (
	Addr = "127.0.0.1:27017"
	URL  = "mongodb://" + Addr
)

// Ping connects to uri and pings the server.
func Ping(ctx context.Context, uri string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(2 * time.Second).
		SetConnectTimeout(2 * time.Second))
	if err != nil {
		return err
	}
	defer c.Disconnect(context.WithoutCancel(ctx))
	return c.Ping(ctx, readpref.Primary())
}

// Start runs the ferretdb binary with its SQLite files in stateDir and waits until a ping succeeds.
func Start(ctx context.Context, bin, stateDir, logPath string) (*proc.Process, error) {
	if err := proc.CheckPortFree(Addr); err != nil {
		return nil, fmt.Errorf("mongodb: %w, and it does not answer MongoDB pings; stop whatever holds it", err)
	}
	p, err := proc.Start("ferretdb", []string{bin, "-listen", Addr, "-state-dir", stateDir}, proc.Options{LogPath: logPath})
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(ctx, 30*time.Second, func(ctx context.Context) error { return Ping(ctx, URL) }); err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, fmt.Errorf("mongodb: %w", err)
	}
	return p, nil
}
