package httpapi

import (
	"errors"
	"slices"
	"testing"
)

// paginate asks for one more item than the page holds: a next page exists exactly when the store has more than limit
// items after the cursor, and its cursor is the page's last key.
func TestPaginate(t *testing.T) {
	store := []string{"a", "b", "c", "d", "e"}
	key := func(s string) string { return s }
	for limit := 1; limit <= 7; limit++ {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(store) {
				t.Fatalf("limit %d: the pages do not end", limit)
			}
			p, err := paginate(limit, func(n int) ([]string, error) {
				i, _ := slices.BinarySearch(store, after)
				if i < len(store) && store[i] == after {
					i++
				}
				if n != limit+1 {
					t.Errorf("limit %d: asked the store for %d", limit, n)
				}
				return store[i:min(i+n, len(store))], nil
			}, key)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) > limit {
				t.Errorf("limit %d: a page of %d", limit, len(p.Items))
			}
			got = append(got, p.Items...)
			if p.Next == nil {
				break
			}
			if *p.Next != p.Items[len(p.Items)-1] {
				t.Errorf("limit %d: next %q, want the page's last key %q", limit, *p.Next, p.Items[len(p.Items)-1])
			}
			after = *p.Next
		}
		if !slices.Equal(got, store) {
			t.Errorf("limit %d: pages gave %v, want %v", limit, got, store)
		}
		// A store of exactly limit items is one page, with no next.
		if p, _ := paginate(limit, func(int) ([]string, error) { return store[:min(limit, len(store))], nil }, key); p.Next != nil {
			t.Errorf("limit %d: a full last page has a next (%q)", limit, *p.Next)
		}
	}
	down := errors.New("down")
	if _, err := paginate(3, func(int) ([]string, error) { return nil, down }, key); !errors.Is(err, down) {
		t.Errorf("store error: %v", err)
	}
}
