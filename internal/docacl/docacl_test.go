package docacl

import (
	"slices"
	"testing"
)

func TestRulesRenameTheDocumentedKeys(t *testing.T) {
	rules, err := Rules("sensorhub", "s1", "e1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"~s1", "~s1.poison", "~s1:nacks", "~e1", "&s1", "-@all", "+@stream"} {
		if !slices.Contains(rules, want) {
			t.Errorf("rules %v lack %q", rules, want)
		}
	}
	for _, r := range rules {
		if r[0] == '>' {
			t.Errorf("rules %v hold the password placeholder", rules)
		}
	}
	if _, err := Rules("nobody", "s1", "e1"); err == nil {
		t.Error("a user the docs do not give was found")
	}
}
