package audit

import (
	"slices"
	"testing"
)

// TestActions: the list the UI's filter shows is sorted, complete (the
// set Append accepts) and has the evidence-lock actions.
func TestActions(t *testing.T) {
	got := Actions()
	if !slices.IsSorted(got) || len(got) != len(actions) {
		t.Errorf("Actions() = %v: not sorted or not the %d accepted actions", got, len(actions))
	}
	for _, a := range got {
		if !actions[a] {
			t.Errorf("Actions() has %q, which Append refuses", a)
		}
	}
	for _, a := range []string{EvidenceLock, EvidenceUnlock, Login, Export} {
		if !slices.Contains(got, a) {
			t.Errorf("Actions() lacks %q", a)
		}
	}
}
