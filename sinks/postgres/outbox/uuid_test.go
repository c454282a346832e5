package outbox_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/internal/poll"

	"github.com/google/uuid"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/redis/redistest"
	"github.com/sensorhub/sensorhub/sinks/postgres"
	"github.com/sensorhub/sensorhub/sinks/postgres/outbox"
	"github.com/sensorhub/sensorhub/sinks/postgres/postgrestest"
)

// TestEventUUIDInAnyFormIsStoredAndForwardedCanonical writes handler events
// whose UUIDs are in the urn, braced and upper-case forms uuid.Parse
// accepts: the readings are stored, and each event reaches the stream once,
// under its UUID in the canonical form consumers dedupe by.
func TestEventUUIDInAnyFormIsStoredAndForwardedCanonical(t *testing.T) {
	t.Parallel()
	db := postgrestest.New(t)
	stream := redistest.Name(t, "events")
	sink, err := postgres.New(postgres.Config{DB: db.Pool, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]func(uuid.UUID) string{
		"urn":        func(id uuid.UUID) string { return id.URN() },
		"braced":     func(id uuid.UUID) string { return "{" + id.String() + "}" },
		"upper case": func(id uuid.UUID) string { return strings.ToUpper(id.String()) },
		"no hyphens": func(id uuid.UUID) string { return strings.ReplaceAll(id.String(), "-", "") },
	}
	want := make(map[string]string) // canonical UUID -> form
	var events []sensorhub.Event
	for name, form := range forms {
		id := uuid.New()
		want[id.String()] = name
		events = append(events, sensorhub.Event{UUID: form(id), Type: "test.uuid_form", Version: 1, Time: time.Now(),
			Payload: json.RawMessage(`"` + name + `"`)})
	}
	at := time.Date(2024, 12, 1, 12, 0, 0, 0, time.UTC)
	res, err := sink.Write(t.Context(), sensorhub.Batch{
		Readings: []sensorhub.Reading{{Station: "roof", Sensor: "temperature", Time: at, Value: 14, Unit: "Cel"}},
		Events:   events,
	})
	if err != nil || res.Stored != 1 {
		t.Fatalf("Write = %+v, %v; want the reading stored", res, err)
	}

	newForwarder(t, db, stream, outbox.Config{})
	poll.Until(t, 20*time.Second, "every event forwarded", func() bool { return len(streamEvents(t, stream)) >= 1+len(forms) })
	entries, err := redistest.Client(t).XRange(t.Context(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var forwarded []string
	for _, entry := range entries {
		var wire struct {
			UUID string `json:"uuid"`
			Type string `json:"type"`
		}
		payload, _ := entry.Values["payload"].(string)
		if err := json.Unmarshal([]byte(payload), &wire); err != nil {
			t.Fatalf("entry %s: %v", entry.ID, err)
		}
		if wire.Type == "test.uuid_form" {
			forwarded = append(forwarded, wire.UUID)
		}
	}
	slices.Sort(forwarded)
	if canonical := slices.Sorted(maps.Keys(want)); !slices.Equal(forwarded, canonical) {
		t.Errorf("forwarded UUIDs %q, want each once in canonical form %q (forms %v)", forwarded, canonical, want)
	}
}
