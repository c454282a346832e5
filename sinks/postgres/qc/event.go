package qc

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// EventFlagged is the type of the event that announces a reading's new
// quality flags; its payload is a Flagged. Part of the events contract: do
// not rename it.
const EventFlagged = "reading.flagged"

// FlaggedVersion is the schema version of Flagged.
const FlaggedVersion = 1

// Flagged is the payload of an EventFlagged event: the stored reading
// Station/Sensor at Time now has Flag, set by Tests, and had PreviousFlag
// and PreviousTests before. The first evaluation of a reading as pass (2 →
// 1) is not announced.
type Flagged struct {
	Station string    `json:"station"`
	Sensor  string    `json:"sensor"`
	Time    time.Time `json:"ts"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit"`
	// Flag is the QARTOD code: 1 pass, 3 suspect, 4 fail.
	Flag int16 `json:"qc_flag"`
	// Tests are the tests that flagged it, empty when it passed.
	Tests         []string `json:"qc_tests"`
	PreviousFlag  int16    `json:"previous_flag"`
	PreviousTests []string `json:"previous_tests"`
}

// flaggedEvent announces c. Its UUID is a new time-ordered one, not one
// derived from the reading: a change of flags is committed once, in the
// transaction that stores it, so a retry or a replica that evaluates the
// reading again finds nothing to change and announces nothing; a UUID
// derived from the reading and the flags would repeat when a reading's
// flags go back and forth (1 → 3 → 1 → 3 as its neighbours arrive), and a
// consumer deduping by UUID would drop the later changes.
func flaggedEvent(station, sensor string, c change) (sensorhub.Event, error) {
	p := Flagged{Station: station, Sensor: sensor, Time: c.Time.UTC(), Value: c.Value, Unit: c.unit,
		Flag: c.result.flag, Tests: nonNil(c.result.tests), PreviousFlag: c.stored.flag, PreviousTests: nonNil(c.stored.tests)}
	id, err := uuid.NewV7()
	if err != nil {
		return sensorhub.Event{}, fmt.Errorf("qc: event UUID: %w", err)
	}
	e, err := sensorhub.NewEventAt(id.String(), EventFlagged, FlaggedVersion, c.Time, p)
	if err != nil {
		return sensorhub.Event{}, fmt.Errorf("qc: %w", err)
	}
	return e, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
