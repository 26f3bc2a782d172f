package ferret

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPatch(t *testing.T) {
	upstream := []byte("const (\n\t// IDColumn is a SQLite path expression for _id field.\n\t" + upstreamLine + "\n)\n")
	got, err := patch(upstream)
	if err != nil {
		t.Fatal(err)
	}
	want := "const (\n\t// IDColumn is a SQLite path expression for _id field.\n\tIDColumn = DefaultColumn + `->\"_id\"`"
	if !strings.HasPrefix(string(got), want) || bytes.Contains(got, []byte("'$._id'")) {
		t.Errorf("patched:\n%s\nwant it to start with:\n%s", got, want)
	}

	// A FerretDB that changed the line is refused, not silently left unpatched.
	for _, src := range []string{"IDColumn = DefaultColumn + \"->'$.id'\"", upstreamLine + "\n" + upstreamLine} {
		if _, err := patch([]byte(src)); err == nil {
			t.Errorf("patch(%q) succeeded, want an error", src)
		}
	}
}

func TestPatchedCopy(t *testing.T) {
	src := t.TempDir()
	meta := filepath.Join(src, filepath.FromSlash(patchedFile))
	other := filepath.Join(src, "go.mod")
	if err := os.MkdirAll(filepath.Dir(meta), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(meta, []byte("\t"+upstreamLine+"\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte("module github.com/FerretDB/FerretDB\n"), 0o444); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(t.TempDir(), "copy")
	for range 2 { // the second call finds the copy made
		if err := patchedCopy(src, dst); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(patchedFile)))
	if err != nil || !bytes.Contains(b, []byte(patchedLine)) {
		t.Errorf("patched file = %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "go.mod")); err != nil || string(b) != "module github.com/FerretDB/FerretDB\n" {
		t.Errorf("other files are copied as they are: go.mod = %q, %v", b, err)
	}
	// The copy is writable, so that it can be removed (the module cache is not).
	if err := os.RemoveAll(dst); err != nil {
		t.Error(err)
	}
}
