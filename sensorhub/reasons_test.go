package sensorhub_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// TestReasonsListsEveryReasonConstant keeps Reasons in step with the
// Reason* constants, read from the source.
func TestReasonsListsEveryReasonConstant(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if !strings.HasPrefix(name.Name, "Reason") || i >= len(spec.Values) {
				continue
			}
			if lit, ok := spec.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				code, _ := strconv.Unquote(lit.Value)
				codes = append(codes, code)
			}
		}
		return true
	})
	if len(codes) == 0 {
		t.Fatal("found no Reason* constants in sensorhub/errors.go")
	}
	slices.Sort(codes)
	known := slices.Sorted(slices.Values(sensorhub.Reasons()))
	if !slices.Equal(codes, known) {
		t.Errorf("Reasons() = %v,\nthe Reason* constants = %v", known, codes)
	}
}
