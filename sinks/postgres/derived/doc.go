// Package derived computes sensorhub's derived quantities (DESIGN.md §13)
// as a processor of the Postgres sink (postgres.Processor), in the
// transaction that stores or changes their inputs: dew point, heat index,
// wind chill, apparent temperature, absolute humidity and sea-level
// pressure from readings of one station that pair in time, rain amounts
// from a station's running total (rain_total) and the rain rate from rain
// amounts. Formulas: package weather.
//
//	p, err := derived.New(derived.Config{}) // Builtin quantities, 60 s tolerance
//	...
//	sink, err := postgres.New(postgres.Config{DB: pool, Processors: []postgres.Processor{qc, p}})
//
// Derived readings are rows of the table readings with derived = true,
// under their own sensor types, at the device time of their primary input.
// They are a pure function of the stored readings: whenever the sink hands
// the processor an input (released, late, or revised by a processor before
// it, such as quality control), every derived value that input may change
// is computed again from the table, stored if it changed, and removed if
// its inputs no longer pair; so the result does not depend on the order in
// which readings arrive. Rain rates are computed on from the exact sum of
// each station's window that the processor keeps (table rain_rate_totals):
// the same values as summed from the table. A device-sent reading of a
// derived type replaces a computed one (the sink counts it as replaced) and
// is never replaced by one. Each transaction's changes are announced in one
// EventDerived event. docs/derived.md tells the rules.
package derived
