package main

import (
	"bytes"
	"log/slog"
	"testing"
)

// lazyAttrs must write what a TextHandler writes, attributes and groups in the same places; it only defers the
// formatting.
func TestLazyAttrsWritesWhatTextHandlerWrites(t *testing.T) {
	opts := &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // not comparable between the two loggers
			}
			return a
		},
	}
	log := func(l *slog.Logger) {
		l = l.With("conn", 7)
		l.Debug("hidden", "q", "SELECT 1")
		l.With("db", "s3_files").WithGroup("op").With("n", 2).Info("update", "docs", 50)
		l.Info("plain")
	}
	var want, got bytes.Buffer
	log(slog.New(slog.NewTextHandler(&want, opts)))
	log(slog.New(lazyAttrs{slog.NewTextHandler(&got, opts), nil}))
	if got.String() != want.String() {
		t.Errorf("lazyAttrs wrote:\n%s\nTextHandler writes:\n%s", got.String(), want.String())
	}
	if bytes.Contains(got.Bytes(), []byte("hidden")) || !bytes.Contains(got.Bytes(), []byte("op.n=2")) {
		t.Errorf("unexpected output:\n%s", got.String())
	}
}

// With must not share attribute slices between sibling loggers.
func TestLazyAttrsSiblingsDoNotShare(t *testing.T) {
	var buf bytes.Buffer
	// Three appends leave spare capacity (1, 2, then 4) for siblings to share.
	base := slog.New(lazyAttrs{slog.NewTextHandler(&buf, nil), nil}).With("a", 1).With("a2", 1).With("a3", 1)
	b := base.With("b", 2)
	c := base.With("c", 3)
	b.Info("x")
	c.Info("y")
	if !bytes.Contains(buf.Bytes(), []byte("msg=x a=1 a2=1 a3=1 b=2")) || !bytes.Contains(buf.Bytes(), []byte("msg=y a=1 a2=1 a3=1 c=3")) {
		t.Errorf("output:\n%s", buf.String())
	}
}
