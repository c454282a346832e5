package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults of Config's zero fields and the limits of every request.
const (
	// DefaultQueryTimeout bounds the queries of one request.
	DefaultQueryTimeout = 5 * time.Second
	// DefaultLimit is the page size of a list when the request sets no
	// limit; MaxLimit is the largest limit a request may set.
	DefaultLimit = 1000
	MaxLimit     = 10000
	// DefaultCacheMaxAge is the max-age of aggregate answers.
	DefaultCacheMaxAge = time.Minute
)

// DB is what the API needs from PostgreSQL: read queries only.
// *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// QueueStats is what the status page shows of the Redis side: the poison
// queue's length and the consumer group's lag.
type QueueStats struct {
	// PoisonQueueLength is the number of entries in the poison stream.
	PoisonQueueLength int64
	// ConsumerLag is the number of stream entries not yet delivered to the
	// consumer group; negative when Redis cannot tell.
	ConsumerLag int64
}

// Config configures an API. DB is required; every other zero field takes
// the default its comment names.
type Config struct {
	// DB is where the readings, stations and rollups are read, e.g. a pool
	// connected as a role that can only SELECT (deploy/postgres/roles.sql).
	// Required; never closed by the API.
	DB DB
	// Queue, when set, tells the status page the poison queue's length and
	// the consumer lag; it is called once per page view. Default nil: the
	// page shows them as unknown.
	Queue func(ctx context.Context) (QueueStats, error)
	// Token, when set, is the bearer token every request to /api/ and to
	// the status page must carry (Authorization: Bearer <token>), compared
	// in constant time. Default empty: no token asked.
	Token string
	// QueryTimeout bounds the queries of one request; a request that takes
	// longer is answered 503. Default DefaultQueryTimeout (5 s).
	QueryTimeout time.Duration
	// CacheMaxAge is the Cache-Control max-age of aggregate answers.
	// Default DefaultCacheMaxAge (1 min).
	CacheMaxAge time.Duration
	// Logger logs the errors answered 5xx. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock the default time ranges are measured from.
	// Default time.Now.
	Now func() time.Time
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("db is required"))
	}
	if c.QueryTimeout < 0 {
		errs = append(errs, errors.New("query timeout must not be negative"))
	}
	if c.CacheMaxAge < 0 {
		errs = append(errs, errors.New("cache max age must not be negative"))
	}
	return errors.Join(errs...)
}

// API serves the read API and the status page. It is safe for concurrent
// use.
type API struct {
	cfg Config
	log *slog.Logger
}

// New returns the API of cfg.
func New(cfg Config) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, errors.Join(errors.New("api: invalid config"), err)
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.CacheMaxAge == 0 {
		cfg.CacheMaxAge = DefaultCacheMaxAge
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &API{cfg: cfg, log: cfg.Logger}, nil
}

// Register adds the API's routes to mux: GET /api/v1/… and the status page
// GET / (the exact path only). With Config.Token set, each of them asks
// for the token; other routes of mux are left as they are.
func (a *API) Register(mux *http.ServeMux) {
	routes := map[string]handlerFunc{
		"GET /api/v1/stations":      a.listStations,
		"GET /api/v1/stations/{id}": a.getStation,
		"GET /api/v1/readings":      a.listReadings,
		"GET /api/v1/aggregates":    a.listAggregates,
		"GET /{$}":                  a.statusPage,
	}
	for pattern, h := range routes {
		mux.Handle(pattern, a.authorize(a.serve(h)))
	}
	// The document describes the API; it holds no data, but the token
	// guards it like the rest of /api/.
	mux.Handle("GET /api/v1/openapi.json", a.authorize(http.HandlerFunc(serveOpenAPI)))
	// Anything else under /api/ is a problem document, not the status
	// page's or a plain-text 404.
	mux.Handle("/api/", a.authorize(a.serve(func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return &problem{Status: http.StatusMethodNotAllowed, Detail: "the API only reads: use GET"}
		}
		return &problem{Status: http.StatusNotFound, Detail: "no such endpoint; see /api/v1/openapi.json"}
	})))
}

// Handler returns a new mux with the API's routes alone.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.Register(mux)
	return mux
}

// handlerFunc is an endpoint: it writes a response, or returns the error
// serve answers with a problem document.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// serve runs h with the query timeout and answers its error.
func (a *API) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.QueryTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	})
}
