package doccheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// root is the repository checkout this package lives in.
const root = "../.."

func loadRepo(t *testing.T) *Repo {
	t.Helper()
	r, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDocs is make docs-check: every command, variable and link of the
// README, docs/ and deploy/README.md.
func TestDocs(t *testing.T) {
	r := loadRepo(t)
	files, err := filepath.Glob(filepath.Join(root, "docs/*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no docs/*.md")
	}
	files = append(files, filepath.Join(root, "README.md"), filepath.Join(root, "deploy/README.md"))
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(root, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range r.Check(filepath.ToSlash(rel), src) {
			t.Error(p)
		}
	}
}

// TestLoadReadsTheRepository guards against a loader that finds nothing
// and so lets every subcommand and flag pass.
func TestLoadReadsTheRepository(t *testing.T) {
	r := loadRepo(t)
	for _, target := range []string{"run", "test", "docs-check"} {
		if !slices.Contains(r.Targets, target) {
			t.Errorf("targets %v lack %s", r.Targets, target)
		}
	}
	if got := r.Commands["migrate"].Subcommands; !slices.Equal(got, []string{"up", "down", "status"}) {
		t.Errorf("migrate subcommands = %v", got)
	}
	if got := r.Commands["publish"].Flags; !slices.Equal(got, []string{"--stream", "--channel"}) {
		t.Errorf("publish flags = %v", got)
	}
	for _, v := range []string{"DB_HOST", "DB_PASSWORD_FILE", "REDIS_URL_FILE", "API_PORT", "SENSORHUB_EVENTS_STREAM", "SENSORHUB_IMAGE"} {
		if !slices.Contains(r.Vars, v) {
			t.Errorf("variables lack %s", v)
		}
	}
}

func TestCheckFindsEachMistake(t *testing.T) {
	r := loadRepo(t)
	tests := []struct {
		name, doc string
		want      string // in the one problem reported; "" for none
	}{
		{"good", "See [the index](README.md#the-pages) and `make test`.\n" +
			"```sh\nDB_PORT=54321 make run   # a comment\nbin/sensorhub poison list --count 5\n" +
			"go run ./cmd/sensorhub migrate status\nsensorhub station set roof --lat -33.9 --lon=18.4\nredis-cli XADD sensor_stream '*' payload '{}'\n```\n", ""},
		{"shell syntax", "```sh\nmake test\necho 'unclosed\n```\n", "docs/x.md:3: shell:"},
		{"make target", "```bash\nmake run && make deploy-to-mars\n```\n", "make deploy-to-mars: the Makefile has no such target"},
		{"make target inline", "Run `make no-such-target SOAK=10` first.\n", "make no-such-target"},
		{"command", "```sh\nbin/sensorhub frobnicate\n```\n", "sensorhub frobnicate: no such command"},
		{"command via go run", "```sh\ngo run ./cmd/sensorhub frobnicate\n```\n", "sensorhub frobnicate: no such command"},
		{"subcommand", "```console\n$ sensorhub migrate sideways\nmigrated\n```\n", "docs/x.md:2: sensorhub migrate sideways: no such subcommand"},
		{"flag", "`sensorhub publish --topic '{}'`\n", "sensorhub publish --topic: no such flag"},
		{"flag with its value", "`sensorhub station set roof --latitude=-3`\n", "sensorhub station --latitude: no such flag"},
		{"variable", "Set SENSORHUB_NO_SUCH_THING=1.\n", "SENSORHUB_NO_SUCH_THING: no such variable"},
		{"variable in a block", "```sh\nREDIS_PROT=6380 make run\n```\n", "REDIS_PROT: no such variable"},
		{"link", "See [here](no-such-file.md).\n", "link no-such-file.md: no file docs/no-such-file.md"},
		{"anchor", "See [here](../README.md#no-such-heading).\n", "README.md has no heading #no-such-heading"},
		{"link outside", "See [here](../../etc/passwd).\n", "outside the repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := r.Check("docs/x.md", []byte(tt.doc))
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Errorf("problems %v, want none", problems)
			case tt.want != "" && (len(problems) != 1 || !strings.Contains(problems[0].String(), tt.want)):
				t.Errorf("problems %v, want one with %q", problems, tt.want)
			}
		})
	}
}

func TestCommandsRejectsAUsageThatRunDoesNotDispatch(t *testing.T) {
	src := "package main\n" +
		"const usage = `commands:\n  run   run it\n  fly   not dispatched\n`\n" +
		"func run(cmd string) { switch cmd { case \"run\": } }\n"
	if _, err := commands([]byte(src)); err == nil || !strings.Contains(err.Error(), `"fly"`) {
		t.Errorf("err = %v, want one naming fly", err)
	}
}

func TestAnchorsFollowGitHub(t *testing.T) {
	doc := parseMarkdown([]byte("# Guarantees\n## The fault suite\n```sh\n# not a heading\n```\n" +
		"## Decisions beyond DESIGN.md\n### `sensorhub bridge`\n## Guarantees\n"))
	want := []string{"guarantees", "the-fault-suite", "decisions-beyond-designmd", "sensorhub-bridge", "guarantees-1"}
	if got := doc.anchors(); !slices.Equal(got, want) {
		t.Errorf("anchors = %v, want %v", got, want)
	}
}
