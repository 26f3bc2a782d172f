// Package panics turns a panic into an error, for goroutines the service starts itself (jobs, ingest and download
// workers): a bug met by one run fails that run, with the stack in the log, instead of the whole process. Request
// handlers have their own recovery (httpapi).
package panics

import (
	"fmt"
	"runtime/debug"
)

// Error is a recovered panic: its value and the stack where it happened.
type Error struct {
	Value any
	Stack []byte
}

func (e *Error) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Catch calls fn and returns its error, or an *Error if fn panicked.
func Catch(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &Error{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}
