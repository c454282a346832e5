package sensorhub

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// CatchAll is the name of the sensor type that receives readings of every
// type that has no handler of its own. Without it, such readings go to the
// poison queue with ReasonUnknownSensor.
const CatchAll = "*"

// Conversion turns a value in another unit into the canonical unit.
type Conversion func(float64) float64

// HandleFunc turns one validated reading into what is stored: a Batch of
// readings, usually r itself, possibly with derived readings beside it, and
// the events to publish with them. It is called concurrently and must honour
// ctx. An error marked with Permanent poisons the message; any other error
// is retried with backoff. A panic is recovered and poisons the message with
// ReasonHandlerPanic.
//
// Events are published if and only if the readings of the message commit,
// in the same transaction. Duplicates of a stored reading still carry the
// events of their handler: give an event a UUID derived from its reading
// (NewReadingEvent) so that consumers dedupe the repeat.
type HandleFunc func(ctx context.Context, r Reading) (Batch, error)

// SensorType describes one sensor type: how its readings are validated,
// converted and handled. A custom type needs only Name, Unit and, where the
// physics bounds it, Min and Max:
//
//	hub, err := sensorhub.New(cfg, sensorhub.SensorType{Name: "soil_ph", Unit: "pH", Min: 0, Max: 14})
type SensorType struct {
	// Name is the type's wire name, matching ^[a-z][a-z0-9_]{0,63}$, or
	// CatchAll. Producers send it in the "sensor" field; it is stored in
	// the readings table, so it must not be renamed once in use.
	Name string
	// Unit is the canonical unit as a SenML code (RFC 8428), e.g. "Cel".
	// Every stored value of this type is in this unit. Required, except for
	// the CatchAll type, where an empty Unit keeps the message's own unit.
	Unit string
	// Units maps other accepted unit codes to conversions into Unit. A
	// reading in a unit that is neither Unit nor a key here is rejected
	// with ReasonUnknownUnit.
	Units map[string]Conversion
	// Min and Max bound the valid value, inclusive, in the canonical unit,
	// after conversion. When both are zero, any finite value is valid.
	Min, Max float64
	// Handle turns a validated reading into the readings to store and the
	// events to publish with them. Nil stores the reading as it is.
	Handle HandleFunc
	// QC declares the type's quality-control tests and limits (see QC).
	// The zero value runs none.
	QC QC
	// Aggregation is how rollups (docs/rollups.md) summarize the type's
	// readings per 5 minutes, hour and day. Empty means AggregateInstant.
	Aggregation Aggregation
	// WeightedBy, for AggregateVector only, names the sensor type whose
	// reading of the same station and time weighs each direction, e.g.
	// wind_speed for wind_direction. Empty: unweighted.
	WeightedBy string
}

// Aggregation is how a sensor type's readings are rolled up. The names are
// stored nowhere but documented; do not rename them.
type Aggregation string

// The aggregation kinds.
const (
	// AggregateInstant is for values measured at an instant (temperature):
	// count, mean, minimum and maximum with their times.
	AggregateInstant Aggregation = "instant"
	// AggregateAmount is for amounts since the previous reading (rain):
	// count, sum, and the largest single amount with its time.
	AggregateAmount Aggregation = "amount"
	// AggregateVector is for directions in degrees (wind_direction): count
	// and the vector mean, weighted by SensorType.WeightedBy.
	AggregateVector Aggregation = "vector"
	// AggregateLast is for states and counters (battery): count and the
	// latest value with its time.
	AggregateLast Aggregation = "last"
)

// Validate reports every problem with the type's definition at once.
func (t SensorType) Validate() error {
	var errs []error
	if t.Name != CatchAll && !sensorName.match(t.Name) {
		errs = append(errs, fmt.Errorf("name %q does not match %s", t.Name, sensorName))
	}
	if t.Unit == "" && t.Name != CatchAll {
		errs = append(errs, fmt.Errorf("sensor type %q: unit is required", t.Name))
	}
	if math.IsNaN(t.Min) || math.IsNaN(t.Max) || t.Min > t.Max {
		errs = append(errs, fmt.Errorf("sensor type %q: invalid range [%v, %v]", t.Name, t.Min, t.Max))
	}
	if err := t.QC.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("sensor type %q: QC: %w", t.Name, err))
	}
	switch t.Aggregation {
	case "", AggregateInstant, AggregateAmount, AggregateLast:
		if t.WeightedBy != "" {
			errs = append(errs, fmt.Errorf("sensor type %q: WeightedBy is for aggregation %q only", t.Name, AggregateVector))
		}
	case AggregateVector:
		if t.WeightedBy != "" && !sensorName.match(t.WeightedBy) {
			errs = append(errs, fmt.Errorf("sensor type %q: WeightedBy %q does not match %s", t.Name, t.WeightedBy, sensorName))
		}
	default:
		errs = append(errs, fmt.Errorf("sensor type %q: unknown aggregation %q (instant, amount, vector or last)", t.Name, t.Aggregation))
	}
	for code, conv := range t.Units {
		if conv == nil {
			errs = append(errs, fmt.Errorf("sensor type %q: unit %q has no conversion", t.Name, code))
		}
	}
	return errors.Join(errs...)
}

// bounded reports whether the type has a valid range.
func (t SensorType) bounded() bool { return t.Min != 0 || t.Max != 0 }

// normalize converts value from unit into the canonical unit and checks the
// range. An empty unit means the canonical unit. Errors are *InputError with
// Index -1; the caller sets the index.
func (t SensorType) normalize(value float64, unit string) (float64, string, error) {
	canonical := t.Unit
	switch {
	case unit == "" || unit == t.Unit:
	case t.Units[unit] != nil:
		value = t.Units[unit](value)
	case t.Name == CatchAll && t.Unit == "":
		// Keep the message's own unit, but still check the range below.
		canonical = unit
	default:
		return 0, "", &InputError{Reason: ReasonUnknownUnit, Index: -1, Field: "unit",
			Err: fmt.Errorf("sensor type %q does not accept unit %q (canonical unit %q)", t.Name, unit, t.Unit)}
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return 0, "", &InputError{Reason: ReasonValueNotFinite, Index: -1, Field: "value",
			Err: fmt.Errorf("value is not finite after conversion to %q", canonical)}
	}
	if t.bounded() && (value < t.Min || value > t.Max) {
		return 0, "", &InputError{Reason: ReasonValueOutOfRange, Index: -1, Field: "value",
			Err: fmt.Errorf("%v %s is outside [%v, %v]", value, canonical, t.Min, t.Max)}
	}
	return value, canonical, nil
}
