package httpapi

// page is one page of a list ordered by a key. Each list's page is a type of its own (aircraftPage, …), named in the
// OpenAPI document.
type page[T any] struct {
	Items []T `json:"items"`
	// Next is the value of after for the next page; null on the last page.
	Next *string `json:"next"`
}

// paginate reads a page of at most limit items: it asks list for one more, so that whether a next page exists is known
// without counting, and Next is the key of the page's last item.
func paginate[T any](limit int, list func(n int) ([]T, error), key func(T) string) (page[T], error) {
	items, err := list(limit + 1)
	if err != nil {
		return page[T]{}, err
	}
	p := page[T]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		next := key(p.Items[limit-1])
		p.Next = &next
	}
	return p, nil
}

// page is limit cut to the configured page size (READ_PAGE_MAX).
func (l Limits) page(limit int) int {
	if l.PageMax > 0 {
		return min(limit, l.PageMax)
	}
	return limit
}
