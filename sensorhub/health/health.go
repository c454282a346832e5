// Package health serves sensorhub's health endpoints over HTTP:
//
//	GET /healthcheck  200 or 503, with a JSON body of component states
//	GET /readyz       same status, for orchestrators' readiness probes
//	GET /livez        200 while the process serves HTTP
//
// Bodies carry component names, states and error texts, never connection
// strings or secrets: checks must return errors that hold none.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Component states in a Report. Part of the HTTP contract.
const (
	StatusOK   = "ok"
	StatusDown = "down"
)

// DefaultCheckTimeout bounds each check when HandlerConfig.CheckTimeout is
// zero.
const DefaultCheckTimeout = 2 * time.Second

// Check reports the health of one component: nil when healthy.
type Check struct {
	// Name identifies the component in the report, e.g. "postgres".
	Name string
	// Func returns nil when the component is healthy. Its error text is
	// shown in the report and must not hold secrets.
	Func func(ctx context.Context) error
}

// Report is the JSON body of /healthcheck and /readyz.
type Report struct {
	// Status is StatusOK when every component is, else StatusDown.
	Status string `json:"status"`
	// Components maps component names to their state.
	Components map[string]Component `json:"components"`
}

// Component is one component's state.
type Component struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Run runs every check concurrently, each bounded by timeout, and reports.
func Run(ctx context.Context, checks []Check, timeout time.Duration) Report {
	rep := Report{Status: StatusOK, Components: make(map[string]Component, len(checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			comp := Component{Status: StatusOK}
			if err := c.Func(cctx); err != nil {
				comp = Component{Status: StatusDown, Error: err.Error()}
			}
			mu.Lock()
			defer mu.Unlock()
			rep.Components[c.Name] = comp
			if comp.Status != StatusOK {
				rep.Status = StatusDown
			}
		})
	}
	wg.Wait()
	return rep
}

// NewHandler returns the handler of the health endpoints for checks, each
// bounded by checkTimeout (DefaultCheckTimeout when zero).
func NewHandler(checks []Check, checkTimeout time.Duration) http.Handler {
	if checkTimeout <= 0 {
		checkTimeout = DefaultCheckTimeout
	}
	report := func(w http.ResponseWriter, r *http.Request) {
		rep := Run(r.Context(), checks, checkTimeout)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if rep.Status != StatusOK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rep)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthcheck", report)
	mux.HandleFunc("GET /readyz", report)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	return mux
}

// Server timeouts and limits. Health requests are tiny; the limits keep slow
// or hostile clients from holding connections.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 15 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Server serves a handler on a TCP address with timeouts set.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	log  *slog.Logger
	done chan error
}

// NewServer returns a server for handler on addr ("host:port"; port 0 picks
// a free one). logger nil means slog.Default().
func NewServer(addr string, handler http.Handler, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{
		srv: &http.Server{
			Addr:              addr,
			Handler:           handler,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		log:  logger,
		done: make(chan error, 1),
	}
}

// Start listens and serves in the background. It fails when the address
// cannot be bound.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.srv.Addr)
	if err != nil {
		return fmt.Errorf("health: listen on %s: %w", s.srv.Addr, err)
	}
	s.ln = ln
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	s.log.Info("health: serving", "addr", ln.Addr().String())
	return nil
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.srv.Addr
	}
	return s.ln.Addr().String()
}

// Stop shuts the server down gracefully, bounded by ctx.
func (s *Server) Stop(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("health: shutdown: %w", err)
	}
	if s.ln != nil {
		if err := <-s.done; err != nil {
			return fmt.Errorf("health: serve: %w", err)
		}
	}
	return nil
}
