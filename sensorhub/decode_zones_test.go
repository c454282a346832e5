package sensorhub_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// zoneMap is a sensorhub.Zones of fixed station zones.
type zoneMap map[string]*time.Location

func (m zoneMap) Zone(station string) *time.Location { return m[station] }
func (zoneMap) Err() error                           { return nil }

// unknownZones is a sensorhub.Zones whose source was never read.
type unknownZones struct{}

func (unknownZones) Zone(string) *time.Location { return nil }
func (unknownZones) Err() error                 { return errors.New("zones not read yet") }

// TestDecodeWaitsWhileZonesAreUnknown: while the station zones are unknown
// no message is decoded, not even one whose time has an offset, and the
// error is not the message's: it is retried, never poisoned.
func TestDecodeWaitsWhileZonesAreUnknown(t *testing.T) {
	t.Parallel()
	d, err := sensorhub.NewDecoder(sensorhub.DecoderConfig{Zones: unknownZones{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Decode([]byte(`{"sensor":"temperature","value":14,"timestamp":"2024-12-01 12:00:00","station":"roof"}`))
	if err == nil || sensorhub.IsPermanent(err) {
		t.Fatalf("Decode with unknown zones = %v, want a transient error", err)
	}
	var inErr *sensorhub.InputError
	if errors.As(err, &inErr) {
		t.Errorf("Decode with unknown zones = %v, an input error, which would poison the message", err)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestDecodeReadsZonelessTimesInTheStationZone checks DESIGN.md §10: a
// station's own zone reads its zone-less times, a station without one
// follows Location, and a time with an offset is the instant it names
// whatever the station. A wall clock that the station's zone skips or
// repeats is refused, never shifted.
func TestDecodeReadsZonelessTimesInTheStationZone(t *testing.T) {
	t.Parallel()
	d, err := sensorhub.NewDecoder(sensorhub.DecoderConfig{
		Now:      clock,
		Location: mustZone(t, "Asia/Tokyo"),
		Zones:    zoneMap{"ny": mustZone(t, "America/New_York"), "berlin": mustZone(t, "Europe/Berlin")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, station, timestamp string
		want                     string // RFC 3339 UTC, or a reason
	}{
		{"station zone", "ny", "2024-12-01 12:00:00", "2024-12-01T17:00:00Z"},
		{"station zone in summer", "ny", "2024-07-01T12:00:00", "2024-07-01T16:00:00Z"},
		{"station without a zone follows Location", "roof", "2024-12-01 12:00:00", "2024-12-01T03:00:00Z"},
		{"offset wins over the station zone", "ny", "2024-12-01T12:00:00Z", "2024-12-01T12:00:00Z"},
		{"unix seconds ignore the station zone", "ny", "1733054400", "2024-12-01T12:00:00Z"},
		{"nonexistent in the station zone", "berlin", "2024-03-31 02:30:00", sensorhub.ReasonAmbiguousLocalTime},
		{"ambiguous in the station zone", "berlin", "2024-10-27 02:30:00", sensorhub.ReasonAmbiguousLocalTime},
		{"nonexistent in New York", "ny", "2024-03-10 02:30:00", sensorhub.ReasonAmbiguousLocalTime},
		{"ambiguous in New York", "ny", "2024-11-03 01:30:00", sensorhub.ReasonAmbiguousLocalTime},
		{"Berlin's change is plain in Tokyo", "roof", "2024-03-31 02:30:00", "2024-03-30T17:30:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := `"` + c.timestamp + `"`
			if c.timestamp[0] != '2' {
				ts = c.timestamp
			}
			payload := `{"sensor":"temperature","value":14,"station":"` + c.station + `","timestamp":` + ts + `}`
			got, err := d.Decode([]byte(payload))
			if want, parseErr := time.Parse(time.RFC3339, c.want); parseErr == nil {
				if err != nil || len(got) != 1 || !got[0].Time.Equal(want) {
					t.Fatalf("Decode(%s) = %+v, %v; want the instant %s", payload, got, err, c.want)
				}
				return
			}
			var in *sensorhub.InputError
			if !errors.As(err, &in) || in.Reason != c.want || in.Field != "timestamp" {
				t.Fatalf("Decode(%s) = %+v, %v; want reason %s on timestamp", payload, got, err, c.want)
			}
		})
	}
}
