package derived

import "testing"

// TestNearest checks the pairing rule on a series at 10, 20 and 40 with a
// tolerance of 5: the nearest partner within the tolerance, of two as
// near the earlier, the one at the same time before both.
func TestNearest(t *testing.T) {
	t.Parallel()
	s := series{{at: 10, value: 1}, {at: 20, value: 2}, {at: 40, value: 4}}
	for _, c := range []struct {
		at   int64
		want float64 // 0: none
	}{
		{at: 4},           // 6 before the first: beyond the tolerance
		{at: 5, want: 1},  // 5 before it: at the tolerance
		{at: 10, want: 1}, // the same time
		{at: 14, want: 1}, // nearer the earlier
		{at: 15, want: 1}, // as near both: the earlier
		{at: 16, want: 2}, // nearer the later
		{at: 20, want: 2}, // the same time, though one is 10 before
		{at: 30},          // 10 from both
		{at: 35, want: 4}, // only the later within the tolerance
		{at: 45, want: 4}, // after the last, at the tolerance
		{at: 46},          // beyond it
		{at: -1 << 40},    // far before
		{at: 1 << 40},     // far after
	} {
		got, ok := s.nearest(c.at, 5)
		if want := c.want != 0; ok != want || ok && got.value != c.want {
			t.Errorf("nearest(%d) = %v, %t; want value %v, %t", c.at, got, ok, c.want, want)
		}
	}
	if _, ok := (series{}).nearest(0, 5); ok {
		t.Error("nearest in an empty series found a point")
	}
}
