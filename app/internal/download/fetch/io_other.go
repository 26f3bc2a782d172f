//go:build !linux

package fetch

import (
	"errors"
	"math"
	"os"
)

// Elsewhere than Linux (macOS, for development) durable files go through
// the page cache, synced before their rename like any other: openDirect
// fails and the writer falls back. Preallocation and early write-out are
// Linux optimisations; without them only speed changes.

func openDirectFile(*os.Root, string) (*os.File, error) { return nil, errors.ErrUnsupported }

func preallocate(*os.File, int64) {}

func startWriteOut(*os.File) {}

// freeBytes is not measured here: DOWNLOAD_RESERVE_BYTES is checked on Linux only.
func freeBytes(string) (int64, error) { return math.MaxInt64, nil }
