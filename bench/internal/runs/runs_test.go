package runs

import (
	"slices"
	"testing"
)

func TestOrderRunsEveryVariantOncePerRoundAndRotatesTheFirst(t *testing.T) {
	got := Order(3, 4)
	want := [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 1, 2}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("Order(3, 4) = %v, want %v", got, want)
	}
	// Two variants: A B, B A, A B — each runs first in turn.
	if got, want := Order(2, 3), [][]int{{0, 1}, {1, 0}, {0, 1}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("Order(2, 3) = %v, want %v", got, want)
	}
	if got := Order(1, 2); !slices.EqualFunc(got, [][]int{{0}, {0}}, slices.Equal) {
		t.Fatalf("Order(1, 2) = %v", got)
	}
}

func TestOf(t *testing.T) {
	for _, c := range []struct {
		v    []float64
		want Stats
	}{
		{nil, Stats{}},
		{[]float64{7}, Stats{Median: 7, Min: 7, Max: 7, N: 1}},
		{[]float64{9, 1, 5}, Stats{Median: 5, Min: 1, Max: 9, N: 3}},
		{[]float64{4, 10, 2, 6}, Stats{Median: 5, Min: 2, Max: 10, N: 4}}, // (4+6)/2
	} {
		if got := Of(c.v); got != c.want {
			t.Errorf("Of(%v) = %+v, want %+v", c.v, got, c.want)
		}
	}
	v := []float64{3, 1, 2}
	Of(v)
	if !slices.Equal(v, []float64{3, 1, 2}) {
		t.Errorf("Of reordered its argument: %v", v)
	}
}

func TestFormat(t *testing.T) {
	if got, want := (Stats{Median: 170.26, Min: 162, Max: 181.5, N: 3}).Format(0), "170 (162–182)"; got != want {
		t.Errorf("Format(0) = %q, want %q", got, want)
	}
	if got, want := (Stats{Median: 0.987, Min: 0.95, Max: 1.031, N: 3}).Format(2), "0.99 (0.95–1.03)"; got != want {
		t.Errorf("Format(2) = %q, want %q", got, want)
	}
}

func TestRatiosPairRoundByRound(t *testing.T) {
	got := Ratios([]float64{100, 90, 120}, []float64{50, 100, 120, 999})
	if want := []float64{2, 0.9, 1}; !slices.Equal(got, want) {
		t.Fatalf("Ratios = %v, want %v", got, want)
	}
}
