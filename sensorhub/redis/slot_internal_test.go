package redis

import "testing"

// TestSlotMatchesRedisDocumentation checks slot against the values the Redis
// documentation publishes: the CRC16 check value of the cluster
// specification's Appendix A (0x31C3 for "123456789") and the answers of
// CLUSTER KEYSLOT in its command reference.
func TestSlotMatchesRedisDocumentation(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]int{
		"123456789":     0x31C3,
		"somekey":       11058,
		"foo{hash_tag}": 2515,
		"hash_tag":      2515, // the tag alone
	} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d, want %d", key, got, want)
		}
	}
	// An empty tag is no tag: the whole key is hashed.
	if slot("{}a") == slot("{}b") {
		t.Error(`slot("{}a") == slot("{}b"): an empty hash tag must not count`)
	}
}
