// Package docacl reads the Redis ACL users that docs/security.md gives, so
// that the tests which run sensorhub as those users run it with exactly the
// documented rights: a right the code needs and the docs lack fails a test.
package docacl

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The names docs/security.md writes its rules for; Rules replaces them.
const (
	docStream = "sensor_stream"
	docEvents = "sensor_events"
)

// Rules returns the ACL rules of user in docs/security.md (the words after
// "user NAME on >PASSWORD"), with the documented stream, its poison and
// nacks keys, channel and events stream (and its nacks key) renamed to
// stream and events.
func Rules(user, stream, events string) ([]string, error) {
	path := filepath.Join(moduleRoot(), "docs", "security.md")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("docacl: %w", err)
	}
	defer f.Close()
	scan := bufio.NewScanner(f)
	for scan.Scan() {
		words := strings.Fields(scan.Text())
		if len(words) < 4 || words[0] != "user" || words[1] != user {
			continue
		}
		rules := make([]string, 0, len(words))
		for _, w := range words[2:] {
			if strings.HasPrefix(w, ">") {
				continue // the password placeholder
			}
			rules = append(rules, rename(w, stream, events))
		}
		return rules, nil
	}
	if err := scan.Err(); err != nil {
		return nil, fmt.Errorf("docacl: read %s: %w", path, err)
	}
	return nil, fmt.Errorf("docacl: %s has no line \"user %s …\"", path, user)
}

// rename maps a key (~) or channel (&) pattern of the documented names to
// the test's; other rules are returned as they are.
func rename(rule, stream, events string) string {
	if len(rule) < 2 || (rule[0] != '~' && rule[0] != '&') {
		return rule
	}
	name := rule[1:]
	switch {
	case strings.HasPrefix(name, docEvents):
		name = events + strings.TrimPrefix(name, docEvents)
	case strings.HasPrefix(name, docStream):
		name = stream + strings.TrimPrefix(name, docStream)
	}
	return rule[:1] + name
}

// moduleRoot is the directory of go.mod, two levels above this file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
