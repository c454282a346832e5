package staleness

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Policy defaults, used where a Policy field is zero.
const (
	// DefaultAfter is the default stale multiple: a series is stale after
	// three expected intervals without a new reading.
	DefaultAfter = 3
	// DefaultDefaultInterval is the expected interval of a series with
	// neither an interval set by hand nor enough arrivals to learn one.
	DefaultDefaultInterval = 5 * time.Minute
	// DefaultMinInterval is the shortest learned interval: a series that
	// reports more often is still expected at this interval, so a burst of
	// arrivals cannot make a short hiccup look like an outage.
	DefaultMinInterval = 10 * time.Second
)

// Learning: the expected interval is the median of the last maxGaps gaps
// between arrivals, once there are minGaps of them. The median ignores the
// odd long gap (a restart of the service) and the odd short one (a backlog
// delivered in several commits), which an average would follow.
const (
	minGaps = 3
	maxGaps = 15
)

// Policy decides when a series is stale. The zero value is the defaults.
type Policy struct {
	// After is how many expected intervals a series may stay silent
	// before it is stale; at least 1. Default DefaultAfter (3).
	After float64
	// DefaultInterval is the expected interval of a series with no
	// interval set by hand and too few arrivals to learn one (fewer than
	// four). Default DefaultDefaultInterval (5 min).
	DefaultInterval time.Duration
	// MinInterval is the least learned interval; it does not bound an
	// interval set by hand. Default DefaultMinInterval (10 s).
	MinInterval time.Duration
}

// Validate reports every problem of p at once.
func (p Policy) Validate() error {
	var errs []error
	if p.After != 0 && (p.After < 1 || math.IsInf(p.After, 0) || math.IsNaN(p.After)) {
		errs = append(errs, fmt.Errorf("staleness: Policy.After %v: must be 1 or more", p.After))
	}
	if p.DefaultInterval < 0 {
		errs = append(errs, fmt.Errorf("staleness: Policy.DefaultInterval %s: must not be negative", p.DefaultInterval))
	}
	if p.MinInterval < 0 {
		errs = append(errs, fmt.Errorf("staleness: Policy.MinInterval %s: must not be negative", p.MinInterval))
	}
	return errors.Join(errs...)
}

func (p Policy) withDefaults() Policy {
	if p.After == 0 {
		p.After = DefaultAfter
	}
	if p.DefaultInterval == 0 {
		p.DefaultInterval = DefaultDefaultInterval
	}
	if p.MinInterval == 0 {
		p.MinInterval = DefaultMinInterval
	}
	return p
}

// expected returns the expected interval of a series: the one set by
// hand, else the learned one (at least MinInterval), else DefaultInterval,
// in seconds. The sweeper's query computes the same in SQL.
func (p Policy) expected(set, learned *float64) float64 {
	switch {
	case set != nil:
		return *set
	case learned != nil:
		return max(*learned, p.MinInterval.Seconds())
	}
	return p.DefaultInterval.Seconds()
}
