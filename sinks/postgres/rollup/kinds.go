package rollup

import (
	"slices"

	"github.com/sensorhub/sensorhub/sensorhub"
)

// kinds maps sensor types to how they aggregate, from the registered
// sensor types. A sensor no type names (a derived type registered
// elsewhere, a catch-all's readings) aggregates as instant.
type kinds struct {
	kind map[string]sensorhub.Aggregation
	// weight maps a vector sensor to the sensor that weighs it.
	weight map[string]string
	// weighs maps a weight sensor to the vector sensors it weighs, whose
	// buckets change with it.
	weighs map[string][]string
}

func newKinds(types []sensorhub.SensorType) kinds {
	k := kinds{kind: map[string]sensorhub.Aggregation{}, weight: map[string]string{}, weighs: map[string][]string{}}
	for _, t := range types {
		if t.Name == sensorhub.CatchAll || t.Aggregation == "" {
			continue
		}
		k.kind[t.Name] = t.Aggregation
		if t.Aggregation == sensorhub.AggregateVector && t.WeightedBy != "" {
			k.weight[t.Name] = t.WeightedBy
			k.weighs[t.WeightedBy] = append(k.weighs[t.WeightedBy], t.Name)
		}
	}
	for _, v := range k.weighs {
		slices.Sort(v)
	}
	return k
}

// of returns sensor's kind; instant unless a type declares another.
func (k kinds) of(sensor string) sensorhub.Aggregation {
	if a, ok := k.kind[sensor]; ok {
		return a
	}
	return sensorhub.AggregateInstant
}

// weightOf returns the sensor weighing sensor's vector mean, or "".
func (k kinds) weightOf(sensor string) string { return k.weight[sensor] }

// columns returns the kind and weight of every sensor, as the queries'
// array parameters.
func (k kinds) columns(sensors []string) (kind, weight []string) {
	kind, weight = make([]string, len(sensors)), make([]string, len(sensors))
	for i, s := range sensors {
		kind[i], weight[i] = string(k.of(s)), k.weightOf(s)
	}
	return kind, weight
}
