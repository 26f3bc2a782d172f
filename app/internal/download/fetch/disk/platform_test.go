package disk

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"maps"
	"slices"
	"strings"
	"testing"
)

// The package's only platform files are io_linux.go and io_other.go, and it is the app's only platform-specific code:
// make lint vets it for macOS, not the whole app (which would compile every dependency once more for darwin). The rest
// of the app builds on macOS as long as both files give the package the same functions, which this checks from their
// source on any platform.
func TestPlatformFilesDeclareTheSameFunctions(t *testing.T) {
	linux, other := funcs(t, "io_linux.go"), funcs(t, "io_other.go")
	if len(linux) == 0 {
		t.Fatal("io_linux.go declares no function: has the file moved?")
	}
	for _, name := range slices.Sorted(maps.Keys(linux)) {
		if other[name] != linux[name] {
			t.Errorf("io_linux.go: func %s%s; io_other.go: %q", name, linux[name], other[name])
		}
	}
	for name := range other {
		if _, ok := linux[name]; !ok {
			t.Errorf("io_other.go declares %s, io_linux.go does not", name)
		}
	}
}

// funcs maps the top-level functions of file to their signatures without parameter names, e.g. "(*os.File, int64) ()".
func funcs(t *testing.T, file string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	sigs := map[string]string{}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
			sigs[fn.Name.Name] = "(" + types(t, fset, fn.Type.Params) + ") (" + types(t, fset, fn.Type.Results) + ")"
		}
	}
	return sigs
}

// types lists the types of fields, one per parameter ("a, b int" is "int, int").
func types(t *testing.T, fset *token.FileSet, fields *ast.FieldList) string {
	t.Helper()
	if fields == nil {
		return ""
	}
	var list []string
	for _, field := range fields.List {
		var b strings.Builder
		if err := printer.Fprint(&b, fset, field.Type); err != nil {
			t.Fatal(err)
		}
		for range max(1, len(field.Names)) {
			list = append(list, b.String())
		}
	}
	return strings.Join(list, ", ")
}
