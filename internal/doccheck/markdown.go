package doccheck

import (
	"bufio"
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// document is a Markdown file split into fenced code blocks and the prose
// around them, which is all the checks need of Markdown.
type document struct {
	blocks []block
	prose  []line
}

type line struct {
	n    int // 1-based
	text string
}

// block is a fenced code block.
type block struct {
	line  int    // of the opening fence
	lang  string // the info string's first word
	lines []string
}

// script returns the shell commands of the block, and false for a block
// that is not shell.
func (b block) script() (string, bool) {
	switch b.lang {
	case "sh", "bash", "shell":
		return strings.Join(b.lines, "\n"), true
	case "console":
		// Only the $ lines are commands; keep the others as blank lines so
		// that line numbers stay right.
		cmds := make([]string, len(b.lines))
		for i, l := range b.lines {
			if c, ok := strings.CutPrefix(l, "$ "); ok {
				cmds[i] = c
			}
		}
		return strings.Join(cmds, "\n"), true
	}
	return "", false
}

var (
	fence      = regexp.MustCompile("^ {0,3}(```+|~~~+)\\s*([^`\\s]*)")
	heading    = regexp.MustCompile(`^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	inlineCode = regexp.MustCompile("`([^`]+)`")
	// inlineLink matches [text](target) and [text](target "title");
	// refLink matches a reference definition, [label]: target.
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s+<?([^\s>]+)>?`)
)

func parseMarkdown(src []byte) document {
	var (
		doc  document
		open *block
		mark string
	)
	for i, text := range lines(src) {
		n := i + 1
		m := fence.FindStringSubmatch(text)
		switch {
		case open == nil && m != nil:
			open, mark = &block{line: n, lang: m[2]}, m[1]
		case open != nil && m != nil && m[2] == "" && strings.HasPrefix(m[1], mark[:1]) && len(m[1]) >= len(mark):
			doc.blocks = append(doc.blocks, *open)
			open = nil
		case open != nil:
			open.lines = append(open.lines, text)
		default:
			doc.prose = append(doc.prose, line{n: n, text: text})
		}
	}
	if open != nil { // an unclosed fence runs to the end of the file
		doc.blocks = append(doc.blocks, *open)
	}
	return doc
}

// links returns the link targets in a line of prose.
func links(text string) []string {
	var out []string
	for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	if m := refLink.FindStringSubmatch(text); m != nil {
		out = append(out, m[1])
	}
	return out
}

// anchors returns the anchors GitHub gives the document's headings:
// lower case, punctuation dropped, spaces as hyphens, and -1, -2, … after
// repeats.
func (d document) anchors() []string {
	var out []string
	seen := map[string]int{}
	for _, l := range d.prose {
		m := heading.FindStringSubmatch(l.text)
		if m == nil {
			continue
		}
		slug := slugify(m[1])
		if k := seen[slug]; k > 0 {
			out = append(out, slug+"-"+strconv.Itoa(k))
		} else {
			out = append(out, slug)
		}
		seen[slug]++
	}
	return out
}

func slugify(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// lines returns the lines of src.
func lines(src []byte) []string {
	var out []string
	s := bufio.NewScanner(bytes.NewReader(src))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}
