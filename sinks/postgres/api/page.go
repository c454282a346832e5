package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Status page limits.
const (
	// pageMaxStations is the most stations the page shows; it says how
	// many more there are.
	pageMaxStations = 200
	// pageRefresh is how often the page reloads itself: by script where
	// it runs, by a meta refresh where it does not.
	pageRefresh = 30 * time.Second
	// queueTimeout bounds asking Redis for the page's queue figures.
	queueTimeout = time.Second
)

//go:embed page.html
var pageFiles embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"num":   formatNumber,
	"label": func(sensor string) string { return strings.ReplaceAll(sensor, "_", " ") },
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"symbol": func(unit string) string {
		if s, ok := unitSymbols[unit]; ok {
			return s
		}
		return unit
	},
}).ParseFS(pageFiles, "page.html"))

// pageData is what the template shows.
type pageData struct {
	Stations []pageStation
	// More is the number of stations not shown.
	More        int
	Queue       QueueStats
	QueueKnown  bool
	Units       string // "us", or "" for canonical
	Generated   time.Time
	RefreshSecs int
	Width       int
	Height      int
}

type pageStation struct {
	station
	Sensors []pageSensor
}

type pageSensor struct {
	latest
	Spark    sparkline
	HasSpark bool
}

// statusPage answers GET /: a tile per station with its sensors' latest
// values, QC and stale badges and a sparkline of their last day, and the
// poison queue and consumer lag. It is HTML rendered here; its only
// script refreshes it.
func (a *API) statusPage(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r, "units")
	units := q.units()
	if err := q.err(); err != nil {
		return err
	}
	ctx := r.Context()
	list, err := a.stations(ctx, stationsSQL, "", pageMaxStations+1)
	if err != nil {
		return err
	}
	data := pageData{Generated: a.cfg.Now().UTC(), RefreshSecs: int(pageRefresh.Seconds()), Width: sparkWidth, Height: sparkHeight}
	if units == usCustomary {
		data.Units = "us"
	}
	if len(list) > pageMaxStations {
		list = list[:pageMaxStations]
		var total int
		if err := a.cfg.DB.QueryRow(ctx, `SELECT count(*) FROM stations`).Scan(&total); err != nil {
			return fmt.Errorf("api: count stations: %w", err)
		}
		data.More = total - pageMaxStations
	}
	// Sparklines are drawn in the units the latest values show; the
	// stored unit is looked up before the latest values are converted.
	if err := a.addLatest(ctx, list, canonical); err != nil {
		return err
	}
	var keys []seriesKey
	var until []time.Time
	stored := map[seriesKey]string{}
	for _, s := range list {
		for _, l := range s.Latest {
			k := seriesKey{s.ID, l.Sensor}
			keys, until = append(keys, k), append(until, l.TS)
			stored[k] = l.Unit
		}
	}
	convert := func(k seriesKey, v float64) float64 {
		if c, ok := units.converter(stored[k]); ok {
			return c.value(v)
		}
		return v
	}
	sparks, err := a.sparklines(ctx, keys, until, convert)
	if err != nil {
		return err
	}
	for _, s := range list {
		ps := pageStation{station: s}
		for _, l := range s.Latest {
			k := seriesKey{s.ID, l.Sensor}
			l.Value = convert(k, l.Value)
			if c, ok := units.converter(l.Unit); ok {
				l.Unit = c.unit
			}
			spark, ok := sparks[k]
			ps.Sensors = append(ps.Sensors, pageSensor{latest: l, Spark: spark, HasSpark: ok})
		}
		data.Stations = append(data.Stations, ps)
	}
	data.Queue, data.QueueKnown = a.queueStats(ctx)

	var body bytes.Buffer
	if err := pageTemplate.Execute(&body, data); err != nil {
		return fmt.Errorf("api: render status page: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	// Nothing but the page's own inline style and script runs.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding, Authorization")
	if !acceptsGzip(r) {
		_, _ = w.Write(body.Bytes())
		return nil
	}
	// The sparklines' coordinates compress to a third: a page of many
	// stations stays light on a phone.
	h.Set("Content-Encoding", "gzip")
	zw := gzip.NewWriter(w)
	_, _ = zw.Write(body.Bytes())
	_ = zw.Close() // a failed write is the client's leaving
	return nil
}

// acceptsGzip reports whether the client takes gzip (Accept-Encoding).
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// queueStats asks Config.Queue, bounded by queueTimeout; ok is false when
// there is none or it failed, and the page says unknown.
func (a *API) queueStats(ctx context.Context) (QueueStats, bool) {
	if a.cfg.Queue == nil {
		return QueueStats{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, queueTimeout)
	defer cancel()
	s, err := a.cfg.Queue(ctx)
	if err != nil {
		a.log.Warn("api: status page: queue figures unknown", "error", err)
		return QueueStats{}, false
	}
	return s, true
}

// unitSymbols are the symbols people read for the SenML unit codes the
// API answers with.
var unitSymbols = map[string]string{"Cel": "°C", "W/m2": "W/m²", "g/m3": "g/m³", "/": ""}

// formatNumber shows v with at most two decimals.
func formatNumber(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}
