package procfs

import (
	"os"
	"testing"
	"time"
)

func TestRSSOfThisProcess(t *testing.T) {
	rss, peak, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || peak < rss {
		t.Fatalf("RSS = %d, peak %d; want 0 < RSS <= peak", rss, peak)
	}
	if err := ResetPeakRSS(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if _, err := StatusBytes(os.Getpid(), "NoSuchField"); err == nil {
		t.Error("StatusBytes of a missing field: no error")
	}
}

func TestCPUTimeGrowsWithWork(t *testing.T) {
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the kernel has charged at least two ticks more.
	deadline := time.Now().Add(time.Minute)
	for {
		now, err := CPUTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now >= before+20*time.Millisecond {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time went from %s to %s in a minute of spinning", before, now)
		}
		for i := 0; i < 1e6; i++ {
			_ = i * i
		}
	}
}

func TestMissingProcess(t *testing.T) {
	if _, err := CPUTime(-1); err == nil {
		t.Error("CPUTime(-1): no error")
	}
	if _, _, err := RSS(-1); err == nil {
		t.Error("RSS(-1): no error")
	}
}
