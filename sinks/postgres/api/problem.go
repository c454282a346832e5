package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// problemType is the media type of error answers (RFC 9457).
const problemType = "application/problem+json"

// problem is an error answered as an RFC 9457 problem document. Type is
// about:blank throughout, so Title is the status code's text; the
// extension members name what was wrong.
type problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Type   string `json:"type"`
	Detail string `json:"detail"`
	// Instance is the request's path.
	Instance string `json:"instance,omitempty"`
	// Parameter is the query or path parameter at fault, the first of
	// Errors when there are several.
	Parameter string `json:"parameter,omitempty"`
	// Errors lists every bad parameter of the request.
	Errors []paramError `json:"errors,omitempty"`
}

// paramError is one bad parameter.
type paramError struct {
	Parameter string `json:"parameter"`
	Detail    string `json:"detail"`
}

func (p *problem) Error() string { return p.Detail }

// badParams returns the 400 problem of errs, nil when errs is empty.
func badParams(errs []paramError) error {
	if len(errs) == 0 {
		return nil
	}
	detail := errs[0].Detail
	if len(errs) > 1 {
		detail = "invalid parameters: " + detail + " (and more in errors)"
	}
	return &problem{Status: http.StatusBadRequest, Detail: detail, Parameter: errs[0].Parameter, Errors: errs}
}

// notFound is the 404 problem of an unknown station.
func notFound(param, id string) error {
	return &problem{Status: http.StatusNotFound, Parameter: param, Detail: "no station " + quote(id)}
}

// writeError answers err: a problem as it is; a query cut by the timeout
// 503; anything else 500, logged, without its text (it may hold details
// of the database).
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var p *problem
	switch {
	case errors.As(err, &p):
	case errors.Is(r.Context().Err(), context.DeadlineExceeded):
		a.log.Warn("api: request timed out", "path", r.URL.Path, "error", err)
		p = &problem{Status: http.StatusServiceUnavailable, Detail: "the query took longer than the API's query timeout; ask for a shorter range"}
	default:
		if r.Context().Err() != nil {
			return // the client left
		}
		a.log.Error("api: request failed", "path", r.URL.Path, "error", err)
		p = &problem{Status: http.StatusInternalServerError, Detail: "the request failed; the service's log has the cause"}
	}
	writeProblem(w, r, p)
}

// writeProblem writes p with its status.
func writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	p.Type = "about:blank"
	p.Title = http.StatusText(p.Status)
	p.Instance = r.URL.Path
	h := w.Header()
	h.Set("Content-Type", problemType)
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
