package main

import (
	"time"

	"github.com/sensorhub/sensorhub/sinks/postgres/calibration"
	"github.com/sensorhub/sensorhub/sinks/postgres/derived"
)

// derivedConfig is the derived-quantities part of the configuration
// (docs/derived.md).
type derivedConfig struct {
	enabled   bool
	tolerance time.Duration
}

func loadDerivedConfig(e *env) derivedConfig {
	return derivedConfig{
		enabled:   e.boolean("SENSORHUB_DERIVED", true),
		tolerance: e.duration("SENSORHUB_DERIVED_TOLERANCE", derived.DefaultTolerance),
	}
}

// processor returns the derived quantities' processor, nil when they are
// off.
func (c derivedConfig) processor() (*derived.Processor, error) {
	if !c.enabled {
		return nil, nil
	}
	return derived.New(derived.Config{Tolerance: c.tolerance})
}

// calibrationFollowers returns what follows a calibration of stored
// readings: the derived quantities, when on.
func (c derivedConfig) calibrationFollowers() ([]calibration.Follower, error) {
	p, err := c.processor()
	if p == nil || err != nil {
		return nil, err
	}
	return []calibration.Follower{p}, nil
}
