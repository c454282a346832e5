package checker

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Producer sends temperature readings of one station, each with a key of
// its own, and records each in a Log. Readings i = 0, 1, 2, … have the
// timestamp Start + i Steps and the value i/8 mod 100 − 40 °C, so the
// stored row identifies the reading.
type Producer struct {
	// Client sends the readings. Required. Its timeouts decide how long a
	// send may hang while a fault lasts.
	Client goredis.UniversalClient
	// Stream is the stream the readings are added to with XADD, in the
	// payload field. With Channel set instead, they are published there
	// (the legacy Pub/Sub input).
	Stream, Channel string
	// Log records every reading sent. Required.
	Log *Log
	// Station names the producer's readings; producers running at once
	// need different stations. Required.
	Station string
	// Start is the timestamp of reading 0. Zero means 2024-01-01T00:00:00Z.
	Start time.Time
	// Interval is the time between sends; 0 sends as fast as Redis answers.
	Interval time.Duration
	// Step is the device time between readings. Zero means a second.
	Step time.Duration

	next atomic.Int64
}

// Reading returns reading i of the producer.
func (p *Producer) Reading(i int) Reading {
	start := p.Start
	if start.IsZero() {
		start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	step := p.Step
	if step == 0 {
		step = time.Second
	}
	return Reading{
		Key:   Key{Station: p.Station, Sensor: "temperature", Time: start.Add(time.Duration(i) * step).UTC()},
		Value: float64(i%800)/8 - 40,
	}
}

// Payload returns the JSON message of r, in the format of DESIGN.md.
func Payload(r Reading) string {
	return `{"sensor":"temperature","station":` + strconv.Quote(r.Station) +
		`,"value":` + strconv.FormatFloat(r.Value, 'g', -1, 64) +
		`,"timestamp":"` + r.Time.Format(time.RFC3339Nano) + `"}`
}

// Send sends the next n readings, one after the other, recording each
// outcome; a failed send does not stop it. It returns early with ctx's
// error when ctx ends. Over the legacy Pub/Sub channel a reading that no
// subscriber received is Failed, and one that was received is OK: the
// bridge's delivery is what the check then proves.
func (p *Producer) Send(ctx context.Context, n int) error {
	if p.Client == nil || p.Log == nil || p.Station == "" || (p.Stream == "") == (p.Channel == "") {
		return errors.New("checker: Producer needs Client, Log, Station, and either Stream or Channel")
	}
	var tick *time.Ticker
	if p.Interval > 0 {
		tick = time.NewTicker(p.Interval)
		defer tick.Stop()
	}
	for range n {
		if tick != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		r := p.Reading(int(p.next.Load()))
		p.Log.Record(r, p.send(ctx, r))
		p.next.Add(1)
	}
	return nil
}

func (p *Producer) send(ctx context.Context, r Reading) Outcome {
	if p.Channel != "" {
		receivers, err := p.Client.Publish(ctx, p.Channel, Payload(r)).Result()
		if err == nil && receivers == 0 {
			return Failed
		}
		return Classify(err)
	}
	err := p.Client.XAdd(ctx, &goredis.XAddArgs{Stream: p.Stream, Values: []any{"payload", Payload(r)}}).Err()
	return Classify(err)
}

// Classify returns the outcome of a Redis command that returned err: OK for
// nil, Failed for an error reply of the server (the command was refused),
// Unknown for anything else, such as a timeout or a broken connection.
func Classify(err error) Outcome {
	if err == nil {
		return OK
	}
	var reply goredis.Error
	if errors.As(err, &reply) {
		return Failed
	}
	return Unknown
}

// Sent returns how many readings the producer has sent so far; it may be
// called while Send runs.
func (p *Producer) Sent() int { return int(p.next.Load()) }
