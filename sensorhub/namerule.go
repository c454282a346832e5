package sensorhub

// nameRule is a rule of the wire format for names: one character of a
// set, then up to 63 of another, ASCII only. It is matched by hand, not by
// its regular expression: the decoder checks a station and a sensor name
// on every reading, and the regular expressions took a sixth of its time
// (BenchmarkDecode). TestNameRulesMatchTheirPatterns checks that both
// agree.
type nameRule struct {
	// pattern is the rule as a regular expression, for messages.
	pattern     string
	first, rest [256]bool
}

// maxNameLen is the longest name a rule allows, in bytes.
const maxNameLen = 64

// newNameRule returns the rule pattern for names of a first byte of first
// and further bytes of rest.
func newNameRule(pattern, first, rest string) *nameRule {
	r := &nameRule{pattern: pattern}
	for i := range len(first) {
		r.first[first[i]] = true
	}
	for i := range len(rest) {
		r.rest[rest[i]] = true
	}
	return r
}

// match reports whether s follows the rule.
func (r *nameRule) match(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || !r.first[s[0]] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !r.rest[s[i]] {
			return false
		}
	}
	return true
}

// String returns the rule as a regular expression.
func (r *nameRule) String() string { return r.pattern }

const (
	lowerLetters = "abcdefghijklmnopqrstuvwxyz"
	upperLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits       = "0123456789"
)

var (
	// stationName is the rule for station ids.
	stationName = newNameRule(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`,
		upperLetters+lowerLetters+digits, upperLetters+lowerLetters+digits+"_.:-")
	// sensorName is the rule for sensor type names.
	sensorName = newNameRule(`^[a-z][a-z0-9_]{0,63}$`, lowerLetters, lowerLetters+digits+"_")
)
