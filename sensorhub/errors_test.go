package sensorhub_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// customPermanent is an error of a caller's own that marks itself permanent
// or not, as a Sink might.
type customPermanent struct{ permanent bool }

func (e customPermanent) Error() string   { return fmt.Sprintf("custom permanent=%v", e.permanent) }
func (e customPermanent) Permanent() bool { return e.permanent }

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("sensor reports a broken probe")

	t.Run("nil stays nil", func(t *testing.T) {
		t.Parallel()
		if err := sensorhub.Permanent("my_reason", nil); err != nil {
			t.Errorf("Permanent(reason, nil) = %v, want nil", err)
		}
	})

	t.Run("keeps the message and the chain", func(t *testing.T) {
		t.Parallel()
		err := sensorhub.Permanent("my_reason", base)
		if err.Error() != base.Error() {
			t.Errorf("Error() = %q, want %q", err.Error(), base.Error())
		}
		if !errors.Is(err, base) {
			t.Error("errors.Is(Permanent(reason, base), base) = false")
		}
		if errors.Unwrap(err) != base {
			t.Error("Unwrap does not return the marked error")
		}
	})

	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
		reason    string
	}{
		{name: "nil", err: nil},
		{name: "plain error", err: base},
		{name: "context canceled", err: context.Canceled},
		{name: "wrapped plain error", err: fmt.Errorf("postgres: insert: %w", base)},
		{name: "permanent", err: sensorhub.Permanent("my_reason", base), permanent: true, reason: "my_reason"},
		{name: "wrapped permanent", err: fmt.Errorf("sensor type %q: %w", "temperature", sensorhub.Permanent("my_reason", base)),
			permanent: true, reason: "my_reason"},
		{name: "joined with a transient error", err: errors.Join(errors.New("cannot publish to poison queue"), sensorhub.Permanent("my_reason", base)),
			permanent: true, reason: "my_reason"},
		{name: "built-in reason", err: sensorhub.Permanent(sensorhub.ReasonDatabaseRejected, base), permanent: true, reason: sensorhub.ReasonDatabaseRejected},
		{name: "input error", err: &sensorhub.InputError{Reason: sensorhub.ReasonInvalidJSON, Index: -1, Err: base},
			permanent: true, reason: sensorhub.ReasonInvalidJSON},
		{name: "wrapped input error", err: fmt.Errorf("decode: %w", &sensorhub.InputError{Reason: sensorhub.ReasonUnknownSensor, Index: 2}),
			permanent: true, reason: sensorhub.ReasonUnknownSensor},
		{name: "outermost reason wins over an input error", err: sensorhub.Permanent("my_reason", &sensorhub.InputError{Reason: sensorhub.ReasonInvalidJSON, Index: -1}),
			permanent: true, reason: "my_reason"},
		{name: "outermost reason wins over a permanent error", err: sensorhub.Permanent("outer", sensorhub.Permanent("inner", base)),
			permanent: true, reason: "outer"},
		{name: "empty reason falls back to handler_rejected", err: sensorhub.Permanent("", base),
			permanent: true, reason: sensorhub.ReasonHandlerRejected},
		{name: "caller's permanent type falls back to handler_rejected", err: fmt.Errorf("sink: %w", customPermanent{permanent: true}),
			permanent: true, reason: sensorhub.ReasonHandlerRejected},
		{name: "caller's type that says transient", err: customPermanent{permanent: false}},
	} {
		outcome := "transient"
		if tc.permanent {
			outcome = "permanent_" + tc.reason
		}
		t.Run(tc.name+"=>"+outcome, func(t *testing.T) {
			t.Parallel()
			if got := sensorhub.IsPermanent(tc.err); got != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.permanent)
			}
			if got := sensorhub.ReasonOf(tc.err); got != tc.reason {
				t.Errorf("ReasonOf(%v) = %q, want %q", tc.err, got, tc.reason)
			}
		})
	}
}

func TestInputError(t *testing.T) {
	t.Parallel()
	base := errors.New("value must be a number, got string")
	for _, tc := range []struct {
		name string
		err  *sensorhub.InputError
		want string
	}{
		{name: "reason only", err: &sensorhub.InputError{Reason: "invalid_json", Index: -1},
			want: "invalid_json"},
		{name: "reason and error", err: &sensorhub.InputError{Reason: "too_large", Index: -1, Err: errors.New("message is 70000 bytes, limit 65536")},
			want: "too_large: message is 70000 bytes, limit 65536"},
		{name: "field", err: &sensorhub.InputError{Reason: "invalid_field", Index: -1, Field: "value", Err: base},
			want: `invalid_field: field "value": value must be a number, got string`},
		{name: "first reading of a batch", err: &sensorhub.InputError{Reason: "not_object", Index: 0},
			want: "not_object: reading 0"},
		{name: "index and field", err: &sensorhub.InputError{Reason: "invalid_field", Index: 2, Field: "value", Err: base},
			want: `invalid_field: reading 2: field "value": value must be a number, got string`},
		{name: "field is quoted", err: &sensorhub.InputError{Reason: "duplicate_key", Index: -1, Field: "a\"b\n"},
			want: `duplicate_key: field "a\"b\n"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if !tc.err.Permanent() {
				t.Error("Permanent() = false for an InputError")
			}
			if errors.Unwrap(tc.err) != tc.err.Err || (tc.err.Err != nil && !errors.Is(tc.err, tc.err.Err)) {
				t.Error("Unwrap does not return Err")
			}
		})
	}
}
