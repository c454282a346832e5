package qc

import (
	"fmt"
	"strconv"
	"strings"
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

// flaggedSpace is the UUID namespace of EventFlagged events. Never change
// it: consumers dedupe by the UUIDs derived from it.
var flaggedSpace = uuid.MustParse("5f0c2b9a-8e4d-4c6a-b1f7-3a9d2e6c8b41")

// flaggedEvent announces c. Its UUID is derived from the reading's key and
// the flags it moves from and to, so every replica and retry that makes
// the same change gives the event the same UUID.
func flaggedEvent(station, sensor string, c change) (sensorhub.Event, error) {
	p := Flagged{Station: station, Sensor: sensor, Time: c.Time.UTC(), Value: c.Value, Unit: c.unit,
		Flag: c.result.flag, Tests: nonNil(c.result.tests), PreviousFlag: c.stored.flag, PreviousTests: nonNil(c.stored.tests)}
	name := strings.Join([]string{station, sensor, strconv.FormatInt(c.Time.UnixMicro(), 10),
		strconv.Itoa(int(c.stored.flag)), strings.Join(c.stored.tests, ","),
		strconv.Itoa(int(c.result.flag)), strings.Join(c.result.tests, ",")}, "\x00")
	e, err := sensorhub.NewEventAt(uuid.NewSHA1(flaggedSpace, []byte(name)).String(), EventFlagged, FlaggedVersion, c.Time, p)
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
