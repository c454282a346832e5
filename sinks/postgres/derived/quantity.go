package derived

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sensorhub/sensorhub/sensorhub"
	"github.com/sensorhub/sensorhub/sensorhub/units"
	"github.com/sensorhub/sensorhub/sensorhub/weather"
)

// Sensor type names, the wire names of the built-in types in handlers/
// (this package does not import handlers). Never rename them.
const (
	temperature      = "temperature"
	humidity         = "humidity"
	pressure         = "pressure"
	windSpeed        = "wind_speed"
	solarRadiation   = "solar_radiation"
	rain             = "rain"
	rainTotal        = "rain_total"
	rainRate         = "rain_rate"
	dewPoint         = "dew_point"
	heatIndex        = "heat_index"
	windChill        = "wind_chill"
	apparentTemp     = "apparent_temperature"
	absoluteHumidity = "absolute_humidity"
	seaLevelPressure = "sea_level_pressure"
)

// Quantity is a derived quantity computed from readings of one station
// that pair in time: one value per reading of Primary, at its device
// time, from the reading of each partner type nearest to it within the
// tolerance (Config.Tolerance). A user's own quantity is a Quantity too:
//
//	frostPoint := derived.Quantity{Name: "frost_point", Unit: "Cel", Primary: "temperature",
//		Partners: []string{"humidity"}, Compute: func(in derived.Inputs) (float64, bool) { ... }}
type Quantity struct {
	// Name is the sensor type the computed readings are stored under, e.g.
	// "dew_point". Never rename it once in use: stored values keep it.
	Name string
	// Unit is the unit code stored with every value, the canonical unit
	// of the sensor type Name (register the type too, so that a device may
	// send its own values).
	Unit string
	// Primary is the sensor type whose readings give the computed
	// readings their times.
	Primary string
	// Partners are the sensor types that must each have a reading within
	// the tolerance of a primary reading; without one, no value is
	// computed (and a value computed before is removed).
	Partners []string
	// Optional are sensor types used when one pairs (e.g. solar radiation
	// for the apparent temperature); none is needed.
	Optional []string
	// Elevation, when true, means Compute needs the station's elevation
	// (stations.elevation_m): without one, nothing is computed.
	Elevation bool
	// Compute returns the value from the inputs, in Unit, or ok false
	// where the quantity is not defined for them (nothing is stored). It
	// must be a pure function: it is called again whenever an input
	// changes, and must give the same value for the same inputs.
	Compute func(in Inputs) (value float64, ok bool)
}

// Inputs are what a Quantity's Compute gets for one primary reading.
type Inputs struct {
	// Values holds the primary reading's value and each partner's that
	// paired, by sensor type, in their canonical units. Every Partner is
	// there; an Optional type only when it paired.
	Values map[string]float64
	// ElevationM is the station's elevation in metres, when
	// Quantity.Elevation is set.
	ElevationM float64
}

// Validate reports every problem of q at once.
func (q Quantity) Validate() error {
	var errs []error
	if err := sensorhub.CheckSensor(q.Name); err != nil {
		errs = append(errs, fmt.Errorf("derived quantity %q: %w", q.Name, err))
	}
	if q.Unit == "" {
		errs = append(errs, fmt.Errorf("derived quantity %q: unit is required", q.Name))
	}
	inputs := q.inputs()
	for _, s := range inputs {
		if err := sensorhub.CheckSensor(s); err != nil {
			errs = append(errs, fmt.Errorf("derived quantity %q: input: %w", q.Name, err))
		}
	}
	if slices.Contains(inputs, q.Name) {
		errs = append(errs, fmt.Errorf("derived quantity %q is one of its own inputs", q.Name))
	}
	if q.Compute == nil {
		errs = append(errs, fmt.Errorf("derived quantity %q: Compute is nil", q.Name))
	}
	return errors.Join(errs...)
}

// Builtin returns the built-in derived quantities of DESIGN.md §13 that
// pair readings (rain amounts and rain rate come from a station's own rain
// series, see Config): dew_point, heat_index and absolute_humidity from
// temperature and humidity; wind_chill from temperature and wind_speed;
// apparent_temperature from temperature, humidity and wind_speed, with
// solar_radiation when one pairs; sea_level_pressure from pressure,
// temperature and the station's elevation. Formulas: package weather.
func Builtin() []Quantity {
	t, rh, v := temperature, humidity, windSpeed
	return []Quantity{
		{Name: dewPoint, Unit: units.Celsius, Primary: t, Partners: []string{rh},
			Compute: func(in Inputs) (float64, bool) { return weather.DewPoint(in.Values[t], in.Values[rh]) }},
		{Name: heatIndex, Unit: units.Celsius, Primary: t, Partners: []string{rh},
			Compute: func(in Inputs) (float64, bool) { return weather.HeatIndex(in.Values[t], in.Values[rh]) }},
		{Name: windChill, Unit: units.Celsius, Primary: t, Partners: []string{v},
			Compute: func(in Inputs) (float64, bool) { return weather.WindChill(in.Values[t], in.Values[v]) }},
		{Name: apparentTemp, Unit: units.Celsius, Primary: t, Partners: []string{rh, v}, Optional: []string{solarRadiation},
			Compute: func(in Inputs) (float64, bool) {
				if q, ok := in.Values[solarRadiation]; ok {
					return weather.ApparentTemperatureSun(in.Values[t], in.Values[rh], in.Values[v], max(q, 0))
				}
				return weather.ApparentTemperature(in.Values[t], in.Values[rh], in.Values[v])
			}},
		{Name: absoluteHumidity, Unit: units.GramPerCubicMetre, Primary: t, Partners: []string{rh},
			Compute: func(in Inputs) (float64, bool) { return weather.AbsoluteHumidity(in.Values[t], in.Values[rh]) }},
		{Name: seaLevelPressure, Unit: units.Hectopascal, Primary: pressure, Partners: []string{t}, Elevation: true,
			Compute: func(in Inputs) (float64, bool) {
				return weather.SeaLevelPressure(in.Values[pressure], in.Values[t], in.ElevationM)
			}},
	}
}

// inputs returns the sensor types q reads.
func (q Quantity) inputs() []string {
	return slices.Concat([]string{q.Primary}, q.Partners, q.Optional)
}
