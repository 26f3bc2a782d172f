package ferret

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// FerretDB v1.24's SQLite backend finds documents by _id with the SQL expression _ferretdb_sjson->'$._id' but indexes
// _id on _ferretdb_sjson->"_id": the same value, a different expression, so SQLite never uses the index and every find,
// update or delete by _id scans the whole collection (measured here: ~2 ms of FerretDB CPU per document updated by _id
// at 200 records, growing with the collection). It is the SQLite twin of FerretDB issue #4646 (PostgreSQL backend); v1
// gets no more fixes. MongoDB and DocumentDB look _id up in their index, so the local stack was charging the lane
// downloads a cost production does not have.
//
// The fix is one constant. Rather than commit a fork, the stack builds our ferretdb command against a patched copy of
// the pinned FerretDB module: copied from the module cache into .dev/, that one line changed, and used through a
// generated go.mod (`go build -modfile`) that adds a replace directive. The committed go.mod stays as it is; `go build
// ./...` in scripts/ still builds against upstream.
const (
	modulePath   = "github.com/FerretDB/FerretDB"
	patchedFile  = "internal/backends/sqlite/metadata/metadata.go"
	upstreamLine = `IDColumn = DefaultColumn + "->'$._id'"`
	patchedLine  = "IDColumn = DefaultColumn + `->\"_id\"` // patched by the local stack: the expression of the _id index (scripts/internal/ferret/patch.go)"
)

// PatchedModFile prepares, under dir, the patched copy of FerretDB and a go.mod for the scripts module that uses it,
// and returns that go.mod's path for `go build -modfile`. The copy is made once per FerretDB version. It fails if the
// pinned version no longer has the line the patch replaces: time to look at the patch again.
func PatchedModFile(ctx context.Context, scripts, dir string) (string, error) {
	src, version, err := moduleDir(ctx, scripts)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "ferretdb-"+version)
	if err := patchedCopy(src, dst); err != nil {
		return "", fmt.Errorf("mongodb: patch FerretDB: %w", err)
	}

	mod, err := os.ReadFile(filepath.Join(scripts, "go.mod"))
	if err != nil {
		return "", err
	}
	sum, err := os.ReadFile(filepath.Join(scripts, "go.sum"))
	if err != nil {
		return "", err
	}
	modFile := filepath.Join(dir, "ferretdb.mod")
	mod = fmt.Appendf(mod, "\nreplace %s => %s\n", modulePath, dst)
	if err := os.WriteFile(modFile, mod, 0o644); err != nil {
		return "", err
	}
	return modFile, os.WriteFile(strings.TrimSuffix(modFile, ".mod")+".sum", sum, 0o644)
}

// moduleDir is the pinned FerretDB module in the module cache (downloaded if needed) and its version.
func moduleDir(ctx context.Context, scripts string) (dir, version string, err error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modulePath)
	cmd.Dir = scripts
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("mongodb: locate %s: go mod download: %w", modulePath, err)
	}
	var m struct{ Dir, Version, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		return "", "", fmt.Errorf("mongodb: locate %s: %s %v", modulePath, m.Error, err)
	}
	return m.Dir, m.Version, nil
}

// patchedCopy copies the module at src to dst with the patch applied, unless dst holds it already.
func patchedCopy(src, dst string) error {
	target := filepath.Join(dst, filepath.FromSlash(patchedFile))
	if b, err := os.ReadFile(target); err == nil && bytes.Contains(b, []byte(patchedLine)) {
		return nil
	}
	upstream, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(patchedFile)))
	if err != nil {
		return err
	}
	patched, err := patch(upstream)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return err
	}
	// The module cache is read-only; the copy must be removable later.
	if err := filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o755)
		}
		return os.Chmod(p, 0o644)
	}); err != nil {
		return err
	}
	return os.WriteFile(target, patched, 0o644) // last: its content marks the copy complete
}

// patch changes the _id expression in FerretDB's metadata.go.
func patch(upstream []byte) ([]byte, error) {
	if bytes.Count(upstream, []byte(upstreamLine)) != 1 {
		return nil, fmt.Errorf("%s no longer holds %s once: review scripts/internal/ferret/patch.go for this FerretDB version", patchedFile, upstreamLine)
	}
	return bytes.Replace(upstream, []byte(upstreamLine), []byte(patchedLine), 1), nil
}
