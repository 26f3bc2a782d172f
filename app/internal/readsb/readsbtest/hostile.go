// Package readsbtest makes hostile flight data files for tests: files built to exhaust memory, time or the database if
// anything in ingestion were bounded by its input. Each is a gzip of at most a few MB however much it expands to, made
// by repeating one compressed member (a gzip stream may hold many members, read as one), so nothing large is ever held
// in memory or on disk.
package readsbtest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
)

// Hostile is one hostile file and the cap or rule it must hit.
type Hostile struct {
	Name string
	Data []byte
	// Want is a substring of the reason the file is refused with.
	Want string
}

const mib = 1 << 20

// Files makes every hostile class; scale multiplies their sizes (1: the sizes of the issue, ≥ 1 GiB values and ≥ 2 GiB
// expansions; tests of the decoder alone use a fraction with small caps).
func Files(scale float64) []Hostile {
	n := func(v float64) int { return max(1, int(v*scale)) }
	now := `{"now":1698796829.3,`
	return []Hostile{
		{"gzip-bomb-2gib.json.gz", repeat(now+`"aircraft":[],"pad":"`, strings.Repeat(" ", mib), n(2048), `"}`), "INGEST_MAX_FILE_BYTES"},
		{"kept-string-1gib.json.gz", repeat(now+`"aircraft":[{"hex":"abcdef","r":"`, strings.Repeat("N", mib), n(1024), `"}]}`), "INGEST_MAX_STRING_BYTES"},
		{"ignored-string-1gib.json.gz", repeat(now+`"aircraft":[{"hex":"abcdef","flight":"`, strings.Repeat("x", mib), n(1024), `"}]}`), "INGEST_MAX_FILE_BYTES"},
		{"ignored-number-1gib.json.gz", repeat(now+`"aircraft":[{"hex":"abcdef","messages":1`, strings.Repeat("0", mib), n(1024), `}]}`), "INGEST_MAX_FILE_BYTES"},
		{"kept-number-1gib.json.gz", repeat(now+`"aircraft":[{"hex":"abcdef","alt_baro":1`, strings.Repeat("0", mib), n(1024), `}]}`), "longer than 64 bytes"},
		{"ignored-array-1gib.json.gz", repeat(now+`"aircraft":[{"hex":"abcdef","mlat":[0`, strings.Repeat(",0", mib/2), n(1024), `]}]}`), "INGEST_MAX_FILE_BYTES"},
		{"empty-records-10m.json.gz", repeat(now+`"aircraft":[{}`, strings.Repeat(",{}", mib/3), n(30), `]}`), "none of its"},
		{"addresses-1m.json.gz", addresses(n(1_048_576)), "INGEST_MAX_AIRCRAFT_PER_FILE"},
		{"nesting-200k.json.gz", repeat(now+`"aircraft":[],"x":`, strings.Repeat("[", 1000), n(200), ""), "INGEST_MAX_DEPTH"},
		{"never-ends.json.gz", repeat(now+`"aircraft":[{"hex":"abcdef"}`, strings.Repeat(`,{"hex":"abcdef"}`, mib/16), n(512), ""), "INGEST_MAX_FILE_BYTES"},
		{"gzip-then-garbage.json.gz", append(gz(now+`"aircraft":[{"hex":"abcdef","alt_baro":1000}]}`), "this is not gzip"...), "gzip"},
	}
}

// repeat is a gzip of head, then body n times, then tail.
func repeat(head, body string, n int, tail string) []byte {
	var out bytes.Buffer
	out.Write(gz(head))
	member := gz(body)
	for range n {
		out.Write(member)
	}
	if tail != "" {
		out.Write(gz(tail))
	}
	return out.Bytes()
}

func gz(s string) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// addresses is a snapshot with n distinct addresses, gzip-compressed.
func addresses(n int) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	fmt.Fprint(zw, `{"now":1698796829.3,"aircraft":[`)
	for i := range n {
		if i > 0 {
			zw.Write([]byte{','})
		}
		fmt.Fprintf(zw, `{"hex":"%06x"}`, i)
	}
	fmt.Fprint(zw, `]}`)
	zw.Close()
	return b.Bytes()
}
