package sensorhub

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestNameRulesMatchTheirPatterns checks the hand-written name rules
// against their regular expressions: on the edges (lengths 63 to 65, each
// character class, multi-byte and invalid UTF-8) and on 100,000 random
// strings of characters in and around the classes.
func TestNameRulesMatchTheirPatterns(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return "a" + strings.Repeat("1", n-1) }
	edges := []string{"", "a", "A", "0", "_", "-", ".", ":", "a_b", "a-b", "a.b", "a:b", "Roof", "roof", "9a",
		"a b", "a\n", "\na", "é", "aé", "a\xff", "\xffa", long(63), long(64), long(65), "temperature", "WS-2902:out"}
	alphabet := []string{"a", "z", "A", "Z", "0", "9", "_", ".", ":", "-", " ", "/", "é", "\xff", "`", "{", "@", "["}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, r := range []*nameRule{stationName, sensorName} {
		re := regexp.MustCompile(r.pattern)
		inputs := edges
		for range 100_000 {
			var b strings.Builder
			for range rng.IntN(maxNameLen + 3) {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			inputs = append(inputs, b.String())
		}
		matched := 0
		for _, s := range inputs {
			want := re.MatchString(s)
			if got := r.match(s); got != want {
				t.Errorf("%s: match(%q) = %t, the regular expression says %t", r, s, got, want)
			}
			if want {
				matched++
			}
		}
		if matched < 100 {
			t.Errorf("%s: only %d of %d inputs match: the test hardly tries the rule's accepting side", r, matched, len(inputs))
		}
	}
}
