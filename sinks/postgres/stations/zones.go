package stations

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// DefaultRefresh is how often Zones reads the stations' zones by default.
const DefaultRefresh = 2 * time.Second

// ZonesConfig configures Zones.
type ZonesConfig struct {
	// DB holds the table stations. Required; never closed.
	DB DB
	// Refresh is how often the zones are read again, and so how soon a
	// running service follows a changed zone. Default DefaultRefresh (2 s).
	Refresh time.Duration
	// Logger receives a Warn record when refreshing starts failing (the
	// zones read before stay in use; an Info record follows when it works
	// again) and when a stored zone is unknown to this build. nil means
	// slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c ZonesConfig) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("stations: ZonesConfig.DB is nil"))
	}
	if c.Refresh < 0 {
		errs = append(errs, fmt.Errorf("stations: ZonesConfig.Refresh must not be negative, got %s", c.Refresh))
	}
	return errors.Join(errs...)
}

// Zones is a sensorhub.Zones over the table stations: the zones of the
// stations that have one, held in memory and read again every Refresh, so
// that the decoder never asks the database per message. For stations
// without a zone, Zone returns nil (the decoder's default zone). Until the
// zones were read once, Err says so, and the hub holds messages back as in
// a database outage. It is safe for concurrent use.
type Zones struct {
	cfg   ZonesConfig
	zones atomic.Pointer[map[string]*time.Location]
	// known memoizes time.LoadLocation by zone name (nil: unknown to this
	// build, warned about once); only the refreshing goroutine uses it.
	known map[string]*time.Location

	started atomic.Bool
	runCtx  context.Context // the refreshing's, canceled by Stop
	cancel  context.CancelFunc
	done    chan struct{} // closed when the refreshing ended
}

// NewZones returns Zones over cfg.DB, not started.
func NewZones(cfg ZonesConfig) (*Zones, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Refresh = cmp.Or(cfg.Refresh, DefaultRefresh)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	z := &Zones{cfg: cfg, known: make(map[string]*time.Location), done: make(chan struct{})}
	z.runCtx, z.cancel = context.WithCancel(context.Background())
	return z, nil
}

// Zone returns station's zone, or nil when it has none of its own.
func (z *Zones) Zone(station string) *time.Location {
	if m := z.zones.Load(); m != nil {
		return (*m)[station]
	}
	return nil
}

// errNotRead is Err's answer until the zones were read once.
var errNotRead = errors.New("stations: zones not read yet (the database does not answer)")

// Err returns an error until the zones were read once.
func (z *Zones) Err() error {
	if z.zones.Load() == nil {
		return errNotRead
	}
	return nil
}

// Start reads the zones, then refreshes them every Refresh until Stop. A
// database that does not answer at start-up is an outage, not a failure:
// Err reports it until a refresh succeeds, so that no reading is decoded in
// a wrong zone meanwhile. ctx bounds the first read only. Start runs once.
func (z *Zones) Start(ctx context.Context) error {
	if !z.started.CompareAndSwap(false, true) {
		return errors.New("stations: zones already started")
	}
	if err := z.refresh(ctx); err != nil {
		z.cfg.Logger.WarnContext(ctx, "stations: zones not read yet; messages wait until they are", "error", err)
	}
	go z.run(z.runCtx)
	return nil
}

// Stop ends the refreshing and waits for it, at most until ctx ends. It
// may be called whether or not Start was, and more than once.
func (z *Zones) Stop(ctx context.Context) error {
	z.cancel()
	if !z.started.Load() {
		return nil
	}
	select {
	case <-z.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stations: stop zones: %w", ctx.Err())
	}
}

func (z *Zones) run(ctx context.Context) {
	defer close(z.done)
	ticker := time.NewTicker(z.cfg.Refresh)
	defer ticker.Stop()
	// One record per outage, not one per tick.
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			err := z.refresh(ctx)
			switch {
			case ctx.Err() != nil:
			case err != nil && !failing:
				z.cfg.Logger.WarnContext(ctx, "stations: zones not refreshed, keeping the previous ones until they are", "error", err)
				failing = true
			case err == nil && failing:
				z.cfg.Logger.InfoContext(ctx, "stations: zones refreshed again")
				failing = false
			}
		}
	}
}

// refresh reads the zones and swaps them in.
func (z *Zones) refresh(ctx context.Context) error {
	rows, err := z.cfg.DB.Query(ctx, `SELECT id, timezone FROM stations WHERE timezone IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("stations: read zones: %w", err)
	}
	zones := make(map[string]*time.Location)
	var id, name string
	_, err = pgx.ForEachRow(rows, []any{&id, &name}, func() error {
		if loc := z.load(id, name); loc != nil {
			zones[id] = loc
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("stations: read zones: %w", err)
	}
	z.zones.Store(&zones)
	return nil
}

// load returns the zone called name, or nil, warning once, when this build
// does not know it (Set refuses such names; a row written by hand or by a
// build with newer zone data can hold one). The station then follows the
// default zone.
func (z *Zones) load(station, name string) *time.Location {
	loc, seen := z.known[name]
	if !seen {
		var err error
		if loc, err = time.LoadLocation(name); err != nil {
			z.cfg.Logger.Warn("stations: unknown time zone, the station follows the default zone",
				"station", station, "timezone", name, "error", err)
		}
		z.known[name] = loc
	}
	return loc
}

var _ sensorhub.Zones = (*Zones)(nil)
