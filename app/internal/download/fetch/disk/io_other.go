//go:build !linux

package disk

import (
	"errors"
	"math"
	"os"
)

// Elsewhere than Linux (macOS, for development) durable files go through the page cache, synced before their rename
// like any other: OpenDirect fails and the writer falls back. Preallocation and early write-out are Linux
// optimisations; without them only speed changes.

func openDirectFile(*os.Root, string) (*os.File, error) { return nil, errors.ErrUnsupported }

func Preallocate(*os.File, int64) {}

func StartWriteOut(*os.File) {}

// FreeBytes is not measured here: DOWNLOAD_RESERVE_BYTES is checked on Linux only.
func FreeBytes(string) (int64, error) { return math.MaxInt64, nil }
