// Command ferretdb runs FerretDB v1 embedded, with the SQLite backend, as the local stack's MongoDB-wire store.
//
// It exists because FerretDB's own cmd/ferretdb panics on missing version metadata when built from the module cache;
// the embeddable package does not.
//
//	ferretdb -listen 127.0.0.1:27017 -state-dir .dev/ferretdb
//
// It stops cleanly (closing connections and the SQLite databases) on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferretdb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:27017", "TCP `address` to listen on")
	stateDir := fs.String("state-dir", "ferretdb-state", "`directory` holding the SQLite databases (created if missing)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(lazyAttrs{slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}), nil})

	dir, err := filepath.Abs(*stateDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
		Handler:  "sqlite",
		// A directory URI ending in "/". synchronous(normal): with the WAL that FerretDB turns on, a commit no longer
		// waits for an fsync (a power cut may lose the last commits, never corrupt the database): right for a
		// development store, and a third cheaper per update.
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/?_pragma=synchronous(normal)",
	})
	if err != nil {
		return err
	}

	logger.Info("serving MongoDB wire protocol", "uri", f.MongoDBURI(), "state", dir)
	if err := f.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// lazyAttrs is a slog handler that keeps the attributes of Logger.With until a record is actually written. FerretDB
// calls logger.With(…).DebugContext(…) around every SQL statement; a TextHandler formats those attributes in With, even
// with debug off, which was a tenth of FerretDB's CPU time per update (pprof).
type lazyAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (l lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	return l.resolved().Handle(ctx, r)
}

func (l lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return lazyAttrs{l.h, append(l.attrs[:len(l.attrs):len(l.attrs)], attrs...)}
}

func (l lazyAttrs) WithGroup(name string) slog.Handler {
	return lazyAttrs{l.resolved().WithGroup(name), nil}
}

func (l lazyAttrs) resolved() slog.Handler {
	if len(l.attrs) == 0 {
		return l.h
	}
	return l.h.WithAttrs(l.attrs)
}
