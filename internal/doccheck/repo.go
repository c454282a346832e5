package doccheck

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// commands reads sensorhub's commands from the source of its main.go: their
// subcommands and flags from the usage constant, which the docs quote, and
// the command names from the switch on cmd in func run, which is what the
// program does. A command of the usage that run does not dispatch is an
// error, so the usage cannot drift from the program unnoticed.
func commands(mainGo []byte) (map[string]Command, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", mainGo, 0)
	if err != nil {
		return nil, err
	}
	usage, err := usageText(f)
	if err != nil {
		return nil, err
	}
	cmds := parseUsage(usage)
	dispatched := dispatchedCommands(f)
	if len(dispatched) == 0 {
		return nil, errors.New(`func run compares cmd with no command name`)
	}
	var errs []error
	for name := range cmds {
		if !slices.Contains(dispatched, name) {
			errs = append(errs, fmt.Errorf("the usage lists %q, which func run does not dispatch", name))
		}
	}
	for _, name := range dispatched {
		if _, ok := cmds[name]; !ok {
			cmds[name] = Command{} // help and its spellings
		}
	}
	return cmds, errors.Join(errs...)
}

// usageText returns the value of the string constant usage.
func usageText(f *ast.File) (string, error) {
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if name.Name != "usage" || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					return strconv.Unquote(lit.Value)
				}
			}
		}
	}
	return "", errors.New("no string constant usage")
}

// parseUsage reads the lines under "commands:", each a synopsis such as
// "migrate up|down|status" or "publish [--stream|--channel] JSON" and a
// description, set apart by two spaces or more.
func parseUsage(usage string) map[string]Command {
	cmds := map[string]Command{}
	_, list, _ := strings.Cut(usage, "commands:\n")
	for l := range strings.SplitSeq(list, "\n") {
		if strings.TrimSpace(l) == "" {
			break
		}
		synopsis, _, _ := strings.Cut(strings.TrimSpace(l), "  ")
		fields := strings.Fields(synopsis)
		name := fields[0]
		cmd := cmds[name]
		for i, field := range fields[1:] {
			for alt := range strings.SplitSeq(strings.Trim(field, "[]"), "|") {
				switch {
				case strings.HasPrefix(alt, "-"):
					cmd.Flags = append(cmd.Flags, alt)
				case i == 0 && alt == strings.ToLower(alt) && !strings.ContainsAny(field, "[]."):
					cmd.Subcommands = append(cmd.Subcommands, alt)
				}
			}
		}
		cmds[name] = cmd
	}
	return cmds
}

// dispatchedCommands returns the strings func run compares cmd with, in a
// switch or with ==.
func dispatchedCommands(f *ast.File) []string {
	var names []string
	add := func(e ast.Expr) {
		if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				names = append(names, s)
			}
		}
	}
	isCmd := func(e ast.Expr) bool {
		id, ok := e.(*ast.Ident)
		return ok && id.Name == "cmd"
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "run" || fn.Recv != nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SwitchStmt:
				if isCmd(n.Tag) {
					for _, stmt := range n.Body.List {
						for _, e := range stmt.(*ast.CaseClause).List {
							add(e)
						}
					}
				}
			case *ast.BinaryExpr:
				if n.Op == token.EQL && isCmd(n.X) {
					add(n.Y)
				}
			}
			return true
		})
	}
	return names
}

// knownVars returns the environment variables of varPattern's families
// that exist: those cmd/sensorhub reads (string constants in its non-test
// Go files, and NAME_FILE for each secret NAME), and those the Makefile and
// the compose files use.
func knownVars(root string) ([]string, error) {
	var vars []string
	add := func(name string) {
		if !slices.Contains(vars, name) {
			vars = append(vars, name)
		}
	}
	sources, err := filepath.Glob(filepath.Join(root, "cmd/sensorhub/*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	for _, src := range sources {
		if strings.HasSuffix(src, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, src, nil, 0)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if n.Kind != token.STRING {
					break
				}
				if s, err := strconv.Unquote(n.Value); err == nil && varPattern.FindString(s) == s {
					add(s)
				}
			case *ast.CallExpr:
				// env.secret(NAME) also reads NAME_FILE.
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "secret" && len(n.Args) == 1 {
					if lit, ok := n.Args[0].(*ast.BasicLit); ok {
						if s, err := strconv.Unquote(lit.Value); err == nil {
							add(s + "_FILE")
						}
					}
				}
			}
			return true
		})
	}
	others, err := filepath.Glob(filepath.Join(root, "deploy/*/docker-compose.yml"))
	if err != nil {
		return nil, err
	}
	others = append(others, filepath.Join(root, "Makefile"), filepath.Join(root, "docker-compose.yaml"), filepath.Join(root, "docker-compose.prod.yml"))
	for _, name := range others {
		text, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		for _, v := range varPattern.FindAllString(string(text), -1) {
			add(v)
		}
	}
	return vars, nil
}
