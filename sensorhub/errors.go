package sensorhub

import (
	"errors"
	"fmt"
	"slices"
)

// Reason codes name why a message was poisoned. They are written to the
// poison stream's "reason" field and are part of the wire contract: do not
// rename them, only add new ones.
const (
	ReasonTooLarge             = "too_large"
	ReasonInvalidUTF8          = "invalid_utf8"
	ReasonNULByte              = "nul_byte"
	ReasonInvalidJSON          = "invalid_json"
	ReasonDuplicateKey         = "duplicate_key"
	ReasonNotObject            = "not_object"
	ReasonEmptyBatch           = "empty_batch"
	ReasonMissingField         = "missing_field"
	ReasonInvalidField         = "invalid_field"
	ReasonInvalidSensor        = "invalid_sensor"
	ReasonInvalidStation       = "invalid_station"
	ReasonInvalidTimestamp     = "invalid_timestamp"
	ReasonTimestampOutOfWindow = "timestamp_out_of_window"
	// ReasonAmbiguousLocalTime: a timestamp without an offset names a wall
	// clock that its zone skips or shows twice (a daylight-saving change),
	// so no single instant can be stored for it (DESIGN.md §10).
	ReasonAmbiguousLocalTime = "ambiguous_local_time"
	ReasonValueNotFinite     = "value_not_finite"
	ReasonValueOutOfRange    = "value_out_of_range"
	ReasonUnknownSensor      = "unknown_sensor"
	ReasonUnknownUnit        = "unknown_unit"
	ReasonUnsupportedEntry   = "unsupported_entry"
	ReasonHandlerRejected    = "handler_rejected"
	ReasonHandlerPanic       = "handler_panic"
	ReasonDatabaseRejected   = "database_rejected"
	// ReasonInvalidEvent: a handler returned an event that fails
	// Event.Validate, a bug in the handler.
	ReasonInvalidEvent = "invalid_event"
	// ReasonEventsDisabled: a handler returned events to a sink that does
	// not store them (postgres.Config.DisableEvents), a wiring mistake;
	// replay the message once events are on.
	ReasonEventsDisabled = "events_disabled"
)

// Reasons returns every reason code the library poisons with, in the
// order of their declaration: what a metrics exporter, say, reports as zero
// before the first message is poisoned. Codes of the caller's own (see
// Permanent) are not in it.
func Reasons() []string { return slices.Clone(reasons) }

var reasons = []string{
	ReasonTooLarge, ReasonInvalidUTF8, ReasonNULByte, ReasonInvalidJSON, ReasonDuplicateKey,
	ReasonNotObject, ReasonEmptyBatch, ReasonMissingField, ReasonInvalidField, ReasonInvalidSensor,
	ReasonInvalidStation, ReasonInvalidTimestamp, ReasonTimestampOutOfWindow, ReasonAmbiguousLocalTime, ReasonValueNotFinite,
	ReasonValueOutOfRange, ReasonUnknownSensor, ReasonUnknownUnit, ReasonUnsupportedEntry,
	ReasonHandlerRejected, ReasonHandlerPanic, ReasonDatabaseRejected, ReasonInvalidEvent,
	ReasonEventsDisabled,
}

// InputError reports a message that can never be processed as it is: it is
// permanent, so the message goes to the poison queue with Reason instead of
// being retried.
type InputError struct {
	// Reason is one of the Reason* codes.
	Reason string
	// Index is the position of the offending reading in a batch (a JSON
	// array), or -1 for a single object or for the message as a whole.
	Index int
	// Field names the offending JSON field, if any.
	Field string
	// Err describes the problem for humans.
	Err error
}

// Error implements error.
func (e *InputError) Error() string {
	msg := e.Reason
	if e.Index >= 0 {
		msg += fmt.Sprintf(": reading %d", e.Index)
	}
	if e.Field != "" {
		msg += fmt.Sprintf(": field %q", e.Field)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

// Permanent reports true: bad input does not get better by retrying.
func (e *InputError) Permanent() bool { return true }

// outageError marks an error that is not the message's: it is valid and
// waits only for the database, to store it (a transient error of the sink)
// or to read it (the station zones not read yet). The hub retries it for
// as long as the outage lasts (see Config.MaxRetries).
type outageError struct{ err error }

func (e *outageError) Error() string { return e.err.Error() }
func (e *outageError) Unwrap() error { return e.err }

// isOutage reports whether err is an outageError and not permanent.
func isOutage(err error) bool {
	_, ok := errors.AsType[*outageError](err)
	return ok && !IsPermanent(err)
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct {
	reason string
	err    error
}

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// Permanent marks err as permanent: the message that caused it goes to the
// poison queue instead of being retried. reason is the code written to the
// poison stream (one of the Reason* codes, or a snake_case code of the
// caller's own). Permanent(nil) returns nil.
func Permanent(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{reason: reason, err: err}
}

// IsPermanent reports whether any error in err's chain is marked permanent by
// Permanent or is an *InputError. Every other error is transient: it is
// retried with backoff and never poisoned.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// ReasonOf returns the reason code of a permanent error, or "" for a
// transient one. The outermost Permanent or *InputError in err's chain names
// the reason; a permanent error that names none (Permanent with an empty
// reason, or an error of the caller's own with a Permanent method) reports
// ReasonHandlerRejected, so that a poisoned message always carries a code.
func ReasonOf(err error) string {
	if !IsPermanent(err) {
		return ""
	}
	var r interface{ poisonReason() string }
	if errors.As(err, &r) && r.poisonReason() != "" {
		return r.poisonReason()
	}
	return ReasonHandlerRejected
}

func (e *InputError) poisonReason() string     { return e.Reason }
func (e *permanentError) poisonReason() string { return e.reason }

// ErrStarted is returned by Start when the hub has already been started or
// stopped: a hub runs once.
var ErrStarted = errors.New("sensorhub: hub already started")
