// Package doccheck checks what the Markdown docs tell a reader to run
// against the repository, so that a renamed make target, command or
// variable, or a moved file, fails a test instead of a newcomer. In a doc:
//
//   - every shell block (```sh, ```bash, ```shell, and the $ lines of
//     ```console) parses as bash;
//   - every `make TARGET` names a target of the Makefile;
//   - every `sensorhub COMMAND [SUBCOMMAND] [--flag]` (also as bin/sensorhub
//     or go run ./cmd/sensorhub) names a command that cmd/sensorhub
//     dispatches, and a subcommand and flags that its usage text lists;
//   - every SENSORHUB_*, DB_*, REDIS_* and API_* variable is one that
//     cmd/sensorhub reads, or that the Makefile or a compose file uses;
//   - every relative link points at a file, and every #anchor at a heading.
//
// Inline code that starts with make or sensorhub is checked as a command
// too. Load reads the repository; Repo.Check checks one document.
package doccheck

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Problem is one thing wrong in a document.
type Problem struct {
	File string // slash-separated, relative to the repository root
	Line int    // 1-based
	Msg  string
}

// String formats p as file:line: message, as compilers do.
func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// Command is a sensorhub command as its usage text describes it.
type Command struct {
	// Subcommands are the words allowed as the command's first argument;
	// when empty, any first argument is allowed.
	Subcommands []string
	// Flags are the flags the command accepts, with their dashes.
	Flags []string
}

// Repo is what documents are checked against. Load fills it in from a
// checkout.
type Repo struct {
	// Root is the directory of the checkout; links are resolved in it.
	Root string
	// Targets are the Makefile's targets.
	Targets []string
	// Commands are sensorhub's commands by name.
	Commands map[string]Command
	// Vars are the environment variables the docs may name.
	Vars []string
}

// varPattern matches the environment variables whose names the docs must
// get right: the service's, and those of the tools around it.
var varPattern = regexp.MustCompile(`\b(?:SENSORHUB|DB|REDIS|API)_[A-Z0-9_]*[A-Z0-9]\b`)

// Load reads the make targets, sensorhub's commands and the known
// environment variables from the checkout at root.
func Load(root string) (*Repo, error) {
	r := &Repo{Root: root}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return nil, fmt.Errorf("doccheck: %w", err)
	}
	r.Targets = makeTargets(makefile)
	mainGo, err := os.ReadFile(filepath.Join(root, "cmd/sensorhub/main.go"))
	if err != nil {
		return nil, fmt.Errorf("doccheck: %w", err)
	}
	if r.Commands, err = commands(mainGo); err != nil {
		return nil, fmt.Errorf("doccheck: cmd/sensorhub/main.go: %w", err)
	}
	if r.Vars, err = knownVars(root); err != nil {
		return nil, fmt.Errorf("doccheck: %w", err)
	}
	return r, nil
}

var targetPattern = regexp.MustCompile(`(?m)^([a-z][a-z0-9-]*)\s*:([^=]|$)`)

// makeTargets returns the explicit targets of a Makefile.
func makeTargets(makefile []byte) []string {
	var targets []string
	for _, m := range targetPattern.FindAllSubmatch(makefile, -1) {
		targets = append(targets, string(m[1]))
	}
	return targets
}

// Check returns the problems of the Markdown document src, whose path
// relative to the root is file (slash-separated).
func (r *Repo) Check(file string, src []byte) []Problem {
	c := checker{repo: r, file: file}
	doc := parseMarkdown(src)
	for _, b := range doc.blocks {
		if script, ok := b.script(); ok {
			c.script(b.line+1, script)
		}
		for i, l := range b.lines {
			c.vars(b.line+1+i, l)
		}
	}
	for _, l := range doc.prose {
		c.vars(l.n, l.text)
		for _, span := range inlineCode.FindAllStringSubmatch(l.text, -1) {
			if code := span[1]; startsWithCommand(code) {
				c.script(l.n, code)
			}
		}
		for _, target := range links(inlineCode.ReplaceAllString(l.text, "")) {
			c.link(l.n, target)
		}
	}
	return c.problems
}

// checker collects the problems of one document.
type checker struct {
	repo     *Repo
	file     string
	problems []Problem
}

func (c *checker) addf(line int, format string, args ...any) {
	c.problems = append(c.problems, Problem{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// script parses src, which starts on line, as bash and checks each
// simple command in it.
func (c *checker) script(line int, src string) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		if perr, ok := errors.AsType[syntax.ParseError](err); ok {
			line += int(perr.Pos.Line()) - 1
		}
		c.addf(line, "shell: %v", err)
		return
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		if call, ok := n.(*syntax.CallExpr); ok && len(call.Args) > 0 {
			c.command(line+int(call.Pos().Line())-1, words(call.Args))
		}
		return true
	})
}

// command checks one command line, given as its words.
func (c *checker) command(line int, argv []string) {
	switch {
	case argv[0] == "make":
		for _, arg := range argv[1:] {
			if arg != "" && !strings.HasPrefix(arg, "-") && !strings.Contains(arg, "=") && !slices.Contains(c.repo.Targets, arg) {
				c.addf(line, "make %s: the Makefile has no such target", arg)
			}
		}
	case path.Base(argv[0]) == "sensorhub":
		c.sensorhub(line, argv[1:])
	case len(argv) > 2 && argv[0] == "go" && argv[1] == "run" && path.Clean(argv[2]) == "cmd/sensorhub":
		c.sensorhub(line, argv[3:])
	}
}

// sensorhub checks the arguments of a sensorhub command line.
// negativeNumber matches a negative number, which is a value, not a flag.
var negativeNumber = regexp.MustCompile(`^-[0-9.]+$`)

func (c *checker) sensorhub(line int, args []string) {
	if len(args) == 0 || args[0] == "" {
		return // the default command, or a word only known at run time
	}
	name, args := args[0], args[1:]
	cmd, ok := c.repo.Commands[name]
	if !ok {
		c.addf(line, "sensorhub %s: no such command", name)
		return
	}
	sub := ""
	for _, arg := range args {
		switch {
		case negativeNumber.MatchString(arg): // a flag's value, such as --lon -74.006
		case strings.HasPrefix(arg, "-"):
			flag, _, _ := strings.Cut(arg, "=") // --offset=-0.4
			if !slices.Contains(cmd.Flags, flag) {
				c.addf(line, "sensorhub %s %s: no such flag", name, flag)
			}
		case sub == "":
			sub = arg
			if len(cmd.Subcommands) > 0 && !slices.Contains(cmd.Subcommands, arg) {
				c.addf(line, "sensorhub %s %s: no such subcommand (usage: %s)", name, arg, strings.Join(cmd.Subcommands, "|"))
			}
		}
	}
}

// vars checks the environment variables named on one line.
func (c *checker) vars(line int, text string) {
	for _, loc := range varPattern.FindAllStringIndex(text, -1) {
		if loc[1] < len(text) && text[loc[1]] == '*' {
			continue // a family, such as REDIS_TLS*
		}
		if name := text[loc[0]:loc[1]]; !slices.Contains(c.repo.Vars, name) {
			c.addf(line, "%s: no such variable in cmd/sensorhub, the Makefile or the compose files", name)
		}
	}
}

var scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// link checks a link target: a relative path must name a file or directory
// of the repository, and an anchor a heading of the Markdown file it names.
func (c *checker) link(line int, target string) {
	if scheme.MatchString(target) {
		return
	}
	file, anchor, _ := strings.Cut(target, "#")
	resolved := c.file
	if file != "" {
		resolved = path.Join(path.Dir(c.file), file)
	}
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		c.addf(line, "link %s: outside the repository", target)
		return
	}
	if _, err := os.Stat(filepath.Join(c.repo.Root, filepath.FromSlash(resolved))); err != nil {
		c.addf(line, "link %s: no file %s", target, resolved)
		return
	}
	if anchor == "" || path.Ext(resolved) != ".md" {
		return
	}
	src, err := os.ReadFile(filepath.Join(c.repo.Root, filepath.FromSlash(resolved)))
	if err != nil {
		c.addf(line, "link %s: %v", target, err)
		return
	}
	if !slices.Contains(parseMarkdown(src).anchors(), anchor) {
		c.addf(line, "link %s: %s has no heading #%s", target, resolved, anchor)
	}
}

// words returns the words of a command as the shell passes them, with
// quotes removed; a word that depends on an expansion is "".
func words(args []*syntax.Word) []string {
	out := make([]string, len(args))
	for i, w := range args {
		out[i], _ = literal(w.Parts)
	}
	return out
}

func literal(parts []syntax.WordPart) (string, bool) {
	var b strings.Builder
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(p.Value)
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			s, ok := literal(p.Parts)
			if !ok {
				return "", false
			}
			b.WriteString(s)
		default:
			return "", false
		}
	}
	return b.String(), true
}

func startsWithCommand(code string) bool {
	for _, prefix := range []string{"make ", "sensorhub ", "bin/sensorhub ", "go run ./cmd/sensorhub "} {
		if strings.HasPrefix(code, prefix) {
			return true
		}
	}
	return false
}
