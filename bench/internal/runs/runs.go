// Package runs schedules a benchmark's variants interleaved and summarises their figures: the median and spread of
// each, and the ratio of two variants round by round. On a shared 2-core machine the load drifts during a run, so two
// variants are compared only within one run, each round running every variant once.
package runs

import (
	"fmt"
	"slices"
)

// Order returns the order in which n variants (indices 0 … n-1) run in each of rounds rounds: every variant once per
// round, the first of each round rotating (0 1 2, 1 2 0, 2 0 1, …), so that no variant always runs first. (With more
// than two, each still follows the same one within a round.)
func Order(n, rounds int) [][]int {
	out := make([][]int, rounds)
	for r := range out {
		out[r] = make([]int, n)
		for i := range n {
			out[r][i] = (r + i) % n
		}
	}
	return out
}

// Stats summarises the figures of one variant.
type Stats struct {
	Median, Min, Max float64
	N                int
}

// Of summarises v; the zero Stats when v is empty.
func Of(v []float64) Stats {
	if len(v) == 0 {
		return Stats{}
	}
	s := slices.Sorted(slices.Values(v))
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// Median is the median of v (the mean of the middle two when len(v) is even), 0 when v is empty.
func Median(v []float64) float64 { return Of(v).Median }

// Format writes s as "median (min–max)" with prec decimals.
func (s Stats) Format(prec int) string {
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}

// Ratios returns a[i] / b[i] for each round both ran: the ratio of two variants measured minutes apart at most, under
// the same load.
func Ratios(a, b []float64) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i] / b[i]
	}
	return out
}
