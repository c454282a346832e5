package sensorhub

import (
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Event types of staleness (DESIGN.md §16). Wire contract: do not rename.
const (
	// EventSensorStale is the type of the event announcing that a series
	// (station, sensor) got no new reading for longer than its expected
	// interval times the stale multiple. Its payload is a SensorStaleness.
	EventSensorStale = "sensor.stale"
	// EventSensorRecovered is the type of the event announcing that a stale
	// series got a new reading again. Its payload is a SensorStaleness.
	EventSensorRecovered = "sensor.recovered"
)

// SensorStaleness is the payload of EventSensorStale and
// EventSensorRecovered events, version 1.
type SensorStaleness struct {
	Station string `json:"station"`
	Sensor  string `json:"sensor"`
	// LastTS is the newest device time stored for the series.
	LastTS time.Time `json:"last_ts"`
	// LastReceivedAt is when the series' newest reading arrived: for
	// sensor.stale the last arrival before the silence, for
	// sensor.recovered the arrival that ended it.
	LastReceivedAt time.Time `json:"last_received_at"`
	// ExpectedIntervalS is the interval, in seconds, at which readings of
	// the series are expected: set by hand or learned from arrivals.
	ExpectedIntervalS float64 `json:"expected_interval_s"`
}

// SensorStalenessVersion is the schema version of SensorStaleness.
const SensorStalenessVersion = 1

// staleSpace is the UUID namespace of staleness events. Never change it:
// consumers dedupe by the UUIDs derived from it.
var staleSpace = uuid.MustParse("5b0f6a2c-1d7e-4c39-8e21-a4f3c9d07b16")

// NewSensorStalenessEvent returns the event of type typ (EventSensorStale
// or EventSensorRecovered) for transition number transition of the series
// p.Station, p.Sensor, happened at at. The UUID is a name-based one
// (version 5) of the series, the type and the transition number, so that
// announcing one transition again yields the same UUID.
func NewSensorStalenessEvent(typ string, transition int64, at time.Time, p SensorStaleness) (Event, error) {
	p.LastTS, p.LastReceivedAt = p.LastTS.UTC(), p.LastReceivedAt.UTC()
	name := p.Station + "\x00" + p.Sensor + "\x00" + typ + "\x00" + strconv.FormatInt(transition, 10)
	return NewEventAt(uuid.NewSHA1(staleSpace, []byte(name)).String(), typ, SensorStalenessVersion, at, p)
}
