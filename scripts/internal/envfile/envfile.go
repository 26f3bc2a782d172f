// Package envfile reads and writes .dev/env: one KEY=value per line, no quotes, in the same form as os.Environ, so the
// lines can be appended to exec.Cmd.Env or loaded by a shell with `set -a; . .dev/env; set +a`.
package envfile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var keyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Write atomically replaces path with the given KEY=value lines, in order. It refuses malformed keys and values holding
// a newline.
func Write(path string, env []string) error {
	var buf bytes.Buffer
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !keyRe.MatchString(k) {
			return fmt.Errorf("envfile: bad entry %q: want KEY=value", kv)
		}
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("envfile: value of %s holds a newline", k)
		}
		buf.WriteString(kv)
		buf.WriteByte('\n')
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".env-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	// The file holds credentials: keep it private to the user.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Read returns the KEY=value lines of path, skipping blank lines and # comments.
func Read(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var env []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok || !keyRe.MatchString(k) {
			return nil, fmt.Errorf("%s:%d: want KEY=value, got %q", path, n, line)
		}
		env = append(env, line)
	}
	return env, sc.Err()
}

// Get returns the value of key in env (the last one wins, as for exec.Cmd.Env), or "" when absent.
func Get(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
