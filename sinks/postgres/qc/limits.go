package qc

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// snapshot is what the processor reads from the database besides the
// readings: the settings, the stations south of the equator and the
// sensor types flagged by hand.
type snapshot struct {
	settings map[[2]string]Settings // by station ("" = all) and sensor
	named    map[string]bool        // the sensor types settings name
	south    map[string]bool
	manual   map[string]bool
	loadedAt time.Time
}

// selectSouth and selectManualSensors read table stations of migration
// 0003 and table qc_manual_flags of 0007.
const (
	selectSouth         = `SELECT id FROM stations WHERE latitude < 0`
	selectManualSensors = `SELECT DISTINCT sensor FROM qc_manual_flags`
)

// loadSnapshot reads a snapshot through db.
func loadSnapshot(ctx context.Context, db DB) (*snapshot, error) {
	list, err := ListSettings(ctx, db)
	if err != nil {
		return nil, err
	}
	s := &snapshot{settings: map[[2]string]Settings{}, named: map[string]bool{}, loadedAt: time.Now()}
	for _, row := range list {
		s.settings[[2]string{row.Station, row.Sensor}] = row
		s.named[row.Sensor] = true
	}
	if s.south, err = names(ctx, db, selectSouth); err != nil {
		return nil, fmt.Errorf("qc: read station latitudes: %w", err)
	}
	if s.manual, err = names(ctx, db, selectManualSensors); err != nil {
		return nil, fmt.Errorf("qc: read manual flags: %w", err)
	}
	return s, nil
}

func names(ctx context.Context, db DB, sql string) (map[string]bool, error) {
	rows, err := db.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(list))
	for _, n := range list {
		out[n] = true
	}
	return out, nil
}

// limits returns the tests of a series: the declaration of its type (or
// of the catch-all type), then the all-stations settings, then the
// station's.
func (s *snapshot) limits(declared map[string]sensorhub.QC, station, sensor string) limits {
	q, ok := declared[sensor]
	if !ok {
		q = declared[sensorhub.CatchAll]
	}
	if row, ok := s.settings[[2]string{"", sensor}]; ok {
		q = row.apply(q)
	}
	if row, ok := s.settings[[2]string{station, sensor}]; ok {
		q = row.apply(q)
	}
	return limits{QC: q, south: s.south[station]}
}

// watches reports whether a sensor type's readings are evaluated: its
// type declares a test, settings name it, or a period of it is flagged by
// hand. The readings of other types keep flag 2 (not evaluated).
func (s *snapshot) watches(declared map[string]sensorhub.QC, sensor string) bool {
	if s.manual[sensor] || s.named[sensor] {
		return true
	}
	q, ok := declared[sensor]
	if !ok {
		q = declared[sensorhub.CatchAll]
	}
	return runs(q)
}

// runs reports whether q declares any test.
func runs(q sensorhub.QC) bool {
	if q.Spike > 0 || q.RateOfChange > 0 || q.FlatLine.On() {
		return true
	}
	for _, r := range q.Climatology {
		if r != (sensorhub.Range{}) {
			return true
		}
	}
	return false
}
