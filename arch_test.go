package lakelink_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/lakelink/lakelink"

// rules says which project packages a folder's non-test code must not
// import (by full import path prefix): the architecture of DESIGN.md, kept
// true by a test.
var rules = []struct {
	dir       string
	forbidden []string
}{
	{".", []string{module + "/"}}, // the root package is the vocabulary only
	{"cdm", []string{module + "/source", module + "/lake", module + "/export", module + "/cmd"}},
	{"source", []string{module + "/lake", module + "/export", module + "/cdm", module + "/cmd"}},
	{"lake", []string{module + "/source", module + "/export", module + "/cdm", module + "/cmd"}},
	{"export", []string{module + "/source/", module + "/lake/file", module + "/cmd"}},
	{"api", []string{module + "/source", module + "/lake", module + "/cdm", module + "/cmd"}},
}

func TestArchitecture(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, r := range rules {
				in := dir == r.dir || (r.dir != "." && strings.HasPrefix(dir, r.dir+"/"))
				if !in {
					continue
				}
				for _, bad := range r.forbidden {
					// Test helper packages of the same layer may be shared.
					if strings.HasPrefix(p, bad) && !strings.HasSuffix(p, "test") {
						t.Errorf("%s imports %s: %s/ must not import %s", path, p, r.dir, bad)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoPrintOutsideCommands keeps output to logs and commands: library
// packages never print with fmt.Print*.
func TestNoPrintOutsideCommands(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		slash := filepath.ToSlash(path)
		if d.IsDir() && (slash == "cmd" || slash == "bench" || slash == "tests" || (strings.HasPrefix(d.Name(), ".") && path != ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "fmt" && strings.HasPrefix(sel.Sel.Name, "Print") {
				t.Errorf("%s: fmt.%s outside cmd/: log with slog, or return the text", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
