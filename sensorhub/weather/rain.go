package weather

import "time"

// RainRate returns the rain rate, in mm/h, of amount mm fallen over window:
// amount × (1 h / window). sinks/postgres/derived sums the amounts of a
// station's rain readings in the window ending at each reading (default 15
// minutes, as WMO-No. 8, Part I, Chapter 6, 6.1 recommends averaging
// intensity over short intervals). ok is false for a window that is not
// positive.
func RainRate(amount float64, window time.Duration) (float64, bool) {
	if window <= 0 {
		return 0, false
	}
	return amount * float64(time.Hour) / float64(window), true
}

// RainAmount returns the rain fallen between two readings of a station's
// running rain total (a counter the station resets to zero daily, monthly,
// yearly or when it restarts), in mm: total − prev when the counter did not
// go down; total itself when it did, for the counter was reset in between
// and has counted total since. A glitch, a single reading below its
// neighbours, is not a reset: the caller skips it (see RainGlitch).
func RainAmount(prev, total float64) float64 {
	if total >= prev {
		return total - prev
	}
	return total
}

// RainGlitch reports whether a reading of a running total, between prev
// and next, is a glitch rather than a reset: it went down from prev and the
// very next reading is back at prev or above.
func RainGlitch(prev, total, next float64) bool {
	return total < prev && next >= prev
}
