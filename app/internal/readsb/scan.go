package readsb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a JSON tokenizer over a fixed buffer. It never holds more than its buffer and one bounded string: values
// the decoder does not use are skipped byte by byte (strings with a memchr-speed search for the closing quote), so
// their size costs time, not memory.
//
// It checks the structure of what it skips (brackets, commas, colons, literals, the characters of numbers and the
// escapes of strings it keeps), not every detail of the JSON grammar inside skipped strings and numbers.
type scanner struct {
	r        io.Reader
	buf      []byte
	pos, end int
	base     int64 // bytes consumed before buf[0]
	err      error // sticky: the reader's error, io.EOF at the end
	maxDepth int
	deadline time.Time // zero: none
	str      []byte    // the last string read by readString, valid until the next one
}

var errTruncated = errors.New("unexpected end of data: the file is truncated")

// refill reads more data once everything buffered is consumed. It reports whether any byte is available.
func (s *scanner) refill() bool {
	if s.pos < s.end {
		return true
	}
	if s.err != nil {
		return false
	}
	if !s.deadline.IsZero() && time.Now().After(s.deadline) {
		s.err = errDecodeTime
		return false
	}
	s.base += int64(s.end)
	s.pos, s.end = 0, 0
	for s.end == 0 && s.err == nil {
		var n int
		n, s.err = s.r.Read(s.buf)
		s.end = n
	}
	return s.end > 0
}

// ensure makes n bytes available in the buffer if the data holds them.
func (s *scanner) ensure(n int) bool {
	for s.end-s.pos < n {
		if s.err != nil {
			return false
		}
		if s.pos > 0 {
			s.base += int64(s.pos)
			s.end = copy(s.buf, s.buf[s.pos:s.end])
			s.pos = 0
		}
		var m int
		m, s.err = s.r.Read(s.buf[s.end:])
		s.end += m
	}
	return true
}

// fail is the error to return when data ran out where more was expected.
func (s *scanner) fail() error {
	if s.err == nil || errors.Is(s.err, io.EOF) {
		return errTruncated
	}
	if errors.Is(s.err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("gzip stream is truncated: %w", errTruncated)
	}
	return s.err
}

func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

func (s *scanner) syntax(c byte, want string) error {
	return fmt.Errorf("invalid character %q at byte %d: want %s", c, s.offset(), want)
}

// peek skips white space and returns the next byte without consuming it.
func (s *scanner) peek() (byte, error) {
	if s.pos < s.end && s.buf[s.pos] > ' ' { // inlined fast path
		return s.buf[s.pos], nil
	}
	return s.peekSlow()
}

func (s *scanner) peekSlow() (byte, error) {
	for {
		for s.pos < s.end {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\n', '\r':
				s.pos++
			default:
				return c, nil
			}
		}
		if !s.refill() {
			return 0, s.fail()
		}
	}
}

// atEnd reports whether only white space is left.
func (s *scanner) atEnd() (bool, error) {
	_, err := s.peek()
	if err == errTruncated {
		return true, nil
	}
	return false, err
}

// expect consumes the next non-space byte, which must be c.
func (s *scanner) expect(c byte, want string) error {
	got, err := s.peek()
	if err != nil {
		return err
	}
	if got != c {
		return s.syntax(got, want)
	}
	s.pos++
	return nil
}

// more is called inside an array or object after its opening bracket (first) or after a value: it consumes a ',' and
// reports true, or the closing bracket and reports false.
func (s *scanner) more(first bool, closing byte) (bool, error) {
	c, err := s.peek()
	if err != nil {
		return false, err
	}
	if c == closing {
		s.pos++
		return false, nil
	}
	if first {
		return true, nil
	}
	if c != ',' {
		return false, s.syntax(c, fmt.Sprintf("',' or '%c'", closing))
	}
	s.pos++
	return true, nil
}

// key reads an object key and its colon. Keys longer than max come back empty, which matches no known key. The bytes
// are valid until the next read.
func (s *scanner) key(max int) ([]byte, error) {
	// Fast path (compact JSON): the key, its quotes and colon are buffered.
	if s.pos < s.end && s.buf[s.pos] == '"' {
		rest := s.buf[s.pos+1 : s.end]
		if i := quoteOrEscape(rest); i >= 0 && i+1 < len(rest) && rest[i] == '"' && rest[i+1] == ':' {
			s.pos += i + 3
			if i > max {
				return nil, nil
			}
			return rest[:i], nil
		}
	}
	if err := s.expect('"', "a key (string)"); err != nil {
		return nil, err
	}
	k, tooLong, err := s.readString(max, true)
	if err != nil {
		return nil, err
	}
	if tooLong {
		k = nil
	}
	return k, s.expect(':', "':' after a key")
}

// readString reads a string whose opening quote is consumed, unescaped into s.str, keeping at most max bytes. A longer
// one is reported tooLong: read to its end if skipLong, else at once (the rest of the file is then of no use).
func (s *scanner) readString(max int, skipLong bool) (str []byte, tooLong bool, err error) {
	s.str = s.str[:0]
	for {
		if s.pos >= s.end && !s.refill() {
			return nil, false, s.fail()
		}
		// Fast path: a run of plain bytes up to the next quote or escape.
		chunk := s.buf[s.pos:s.end]
		i := 0
		for i < len(chunk) && chunk[i] != '"' && chunk[i] != '\\' {
			i++
		}
		if !tooLong {
			if len(s.str)+i > max {
				tooLong = true
				if !skipLong {
					return nil, true, nil
				}
			} else {
				s.str = append(s.str, chunk[:i]...)
			}
		}
		s.pos += i
		if i == len(chunk) {
			continue
		}
		if chunk[i] == '"' {
			s.pos++
			if tooLong {
				return nil, true, nil
			}
			return s.str, false, nil
		}
		s.pos++ // the backslash
		r, err := s.escape()
		if err != nil {
			return nil, false, err
		}
		if !tooLong {
			if len(s.str)+utf8.RuneLen(r) > max {
				tooLong = true
			} else {
				s.str = utf8.AppendRune(s.str, r)
			}
		}
	}
}

// escape reads the rest of an escape sequence after its backslash.
func (s *scanner) escape() (rune, error) {
	c, err := s.raw()
	if err != nil {
		return 0, err
	}
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, err := s.hex4()
		if err != nil {
			return 0, err
		}
		if utf16.IsSurrogate(r) {
			// A pair is \uD8xx\uDCxx; a lone half becomes U+FFFD, as in encoding/json.
			if s.ensure(2) && s.buf[s.pos] == '\\' && s.buf[s.pos+1] == 'u' {
				s.pos += 2
				r2, err := s.hex4()
				if err != nil {
					return 0, err
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					return dec, nil
				}
			}
			return utf8.RuneError, nil
		}
		return r, nil
	}
	return 0, fmt.Errorf("invalid escape '\\%c' at byte %d", c, s.offset())
}

// raw consumes one byte, white space included.
func (s *scanner) raw() (byte, error) {
	if s.pos >= s.end && !s.refill() {
		return 0, s.fail()
	}
	c := s.buf[s.pos]
	s.pos++
	return c, nil
}

func (s *scanner) hex4() (rune, error) {
	var r rune
	for range 4 {
		c, err := s.raw()
		if err != nil {
			return 0, err
		}
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, fmt.Errorf("invalid \\u escape at byte %d", s.offset())
		}
		r = r<<4 | rune(c)
	}
	return r, nil
}

// skipString skips a string whose opening quote is consumed.
func (s *scanner) skipString() error {
	for {
		if s.pos >= s.end && !s.refill() {
			return s.fail()
		}
		chunk := s.buf[s.pos:s.end]
		i := quoteOrEscape(chunk)
		if i < 0 {
			s.pos = s.end
			continue
		}
		s.pos += i + 1
		if chunk[i] == '"' {
			return nil
		}
		if _, err := s.escape(); err != nil {
			return err
		}
	}
}

// quoteOrEscape is the index of the first '"' or '\\' in b, or -1. Most strings are short: a plain loop finds their end
// before a vectorised search would have started; long ones go to bytes.IndexByte.
func quoteOrEscape(b []byte) int {
	n := min(len(b), 32)
	for i := 0; i < n; i++ {
		if c := b[i]; c == '"' || c == '\\' {
			return i
		}
	}
	if n == len(b) {
		return -1
	}
	rest := b[n:]
	q := bytes.IndexByte(rest, '"')
	if q >= 0 {
		rest = rest[:q]
	}
	if e := bytes.IndexByte(rest, '\\'); e >= 0 {
		return n + e
	}
	if q >= 0 {
		return n + q
	}
	return -1
}

var numberBytes = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true,
	'8': true, '9': true, '-': true, '+': true, '.': true, 'e': true, 'E': true}

func isNumberByte(c byte) bool { return numberBytes[c] }

// readNumber reads a number literal of at most max bytes into s.str.
func (s *scanner) readNumber(max int) ([]byte, error) {
	s.str = s.str[:0]
	for {
		if s.pos >= s.end && !s.refill() {
			if s.err != nil && !errors.Is(s.err, io.EOF) {
				return nil, s.fail()
			}
			return s.str, nil // a number may end the document
		}
		chunk := s.buf[s.pos:s.end]
		i := 0
		for i < len(chunk) && isNumberByte(chunk[i]) {
			i++
		}
		if len(s.str)+i > max {
			return nil, fmt.Errorf("a number at byte %d is longer than %d bytes", s.offset(), max)
		}
		s.str = append(s.str, chunk[:i]...)
		s.pos += i
		if i < len(chunk) {
			return s.str, nil
		}
	}
}

// skipNumber skips a number literal of any length.
func (s *scanner) skipNumber() error {
	for {
		if s.pos >= s.end && !s.refill() {
			if s.err != nil && !errors.Is(s.err, io.EOF) {
				return s.fail()
			}
			return nil
		}
		for s.pos < s.end && isNumberByte(s.buf[s.pos]) {
			s.pos++
		}
		if s.pos < s.end {
			return nil
		}
	}
}

// literal consumes word (true, false, null), whose first byte was peeked.
func (s *scanner) literal(word string) error {
	for i := 0; i < len(word); i++ {
		c, err := s.raw()
		if err != nil {
			return err
		}
		if c != word[i] {
			return s.syntax(c, "true, false or null")
		}
	}
	return nil
}

// skipValue skips one value at nesting depth (the depth of the container holding it, 0 for the top level).
func (s *scanner) skipValue(depth int) error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		s.pos++
		return s.skipString()
	case c == '{' || c == '[':
		if depth+1 > s.maxDepth {
			return capError{setting: "INGEST_MAX_DEPTH", what: fmt.Sprintf("values nested deeper than %d levels", s.maxDepth)}
		}
		s.pos++
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		for first := true; ; first = false {
			ok, err := s.more(first, closing)
			if err != nil || !ok {
				return err
			}
			if closing == '}' {
				if _, err := s.key(0); err != nil {
					return err
				}
			}
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.skipNumber()
	}
	return s.syntax(c, "a value")
}
