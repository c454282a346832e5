package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sensorhub/sensorhub/internal/syncbuf"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestMain fails the tests when a goroutine outlives them: the pipeline,
// its pools and clients must all be closed when run returns.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFrostWarnsOnceOnTheThirdReadingBelowZero(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	client := redistest.Client(t)
	stream, eventsStream := redistest.Name(t, "frost_in"), redistest.Name(t, "frost_events")
	env := map[string]string{"DATABASE_URL": db.URL, "REDIS_URL": redistest.URL(),
		"SENSORHUB_STREAM": stream, "SENSORHUB_EVENTS_STREAM": eventsStream}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, &out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, out.String())
		}
	})

	// Readings 2 s apart, each pair sent in reverse order (within the 10 s
	// window), and one of them twice; the last, a minute later, releases
	// the others to the rule. Each is sent once the one before is handled,
	// so that the readings arrive in the order sent: sent at once, a reading
	// could be committed after one 18 s younger and so be late, which is
	// what arriving after the window means.
	base := time.Date(2024, 12, 1, 6, 0, 0, 0, time.UTC)
	values := []float64{1, -1, -2, -3, -4, 2, -1, -1, -1, 3}
	send := func(value float64, ts time.Time) {
		t.Helper()
		payload := fmt.Sprintf(`{"sensor":"temperature","station":"field","value":%v,"timestamp":%q}`, value, ts.Format(time.RFC3339))
		if err := client.XAdd(t.Context(), &goredis.XAddArgs{Stream: stream, Values: []any{"payload", payload}}).Err(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			groups, err := client.XInfoGroups(t.Context(), stream).Result()
			if err == nil && len(groups) == 1 && groups[0].Lag == 0 && groups[0].Pending == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("reading of %s not handled within 30 s: %v %v", ts, groups, err)
			}
		}
	}
	for _, i := range []int{1, 0, 3, 2, 3, 5, 4, 7, 6, 9, 8} {
		send(values[i], base.Add(time.Duration(i)*2*time.Second))
	}
	send(5, base.Add(time.Minute))

	warnings := func() []string {
		var got []string
		for _, e := range redistest.Events(t, client, eventsStream) {
			if e.Type != "frost.warning" {
				continue
			}
			var w FrostWarning
			if err := e.Decode(&w); err != nil {
				t.Fatal(err)
			}
			got = append(got, w.Time.Format(time.RFC3339)+" "+fmt.Sprint(w.Value))
		}
		return got
	}
	want := []string{"2024-12-01T06:00:06Z -3", "2024-12-01T06:00:16Z -1"}
	deadline := time.Now().Add(30 * time.Second)
	for len(warnings()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything extra would arrive now
	if got := warnings(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("frost warnings %v, want %v", got, want)
	}
}
