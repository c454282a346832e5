package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// report is the outcome of a run.
type report struct {
	copy, loop, drain, rules, derived, quality, rollups result
	// livePlain is the live phase run stateless, as the drains; live runs
	// with the service's defaults.
	livePlain, live result
	// short is the shorter drain, growth the drain into a table holding
	// preload readings.
	short, growth result
	preload       int
	api           apiResult
}

func (r report) print(w io.Writer) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\treadings\treadings/s\truns\tvs loop\tp50\tp99\tpeak RSS\tCPU/reading\t")
	row := func(name string, res result, proc bool) {
		runs := "-"
		if len(res.rates) > 1 {
			runs = fmt.Sprintf("%.0f-%.0f", res.rates[0], res.rates[len(res.rates)-1])
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t", name, res.readings, res.rate(), runs)
		if res.p99 > 0 { // live: fed at a fixed rate, which the loop's does not compare with
			fmt.Fprintf(tw, "-\t%s\t%s\t", res.p50.Round(100*time.Microsecond), res.worstP99().Round(100*time.Microsecond))
		} else {
			fmt.Fprintf(tw, "%.2f\t-\t-\t", res.rate()/r.loop.rate())
		}
		if proc {
			fmt.Fprintf(tw, "%.1f MB\t%s\t\n", float64(res.peakRSS)/(1<<20), res.cpuPerReading())
		} else {
			fmt.Fprint(tw, "-\t-\t\n")
		}
	}
	row("copy (ceiling)", r.copy, false)
	row("minimal loop", r.loop, false)
	row("sensorhub drain", r.drain, true)
	row(fmt.Sprintf("drain, first %d", r.short.readings), r.short, true)
	row("drain, threshold rules", r.rules, true)
	row("drain, derived on", r.derived, true)
	row("drain, QC + derived on", r.quality, true)
	row("drain, rollups on", r.rollups, true)
	row(fmt.Sprintf("drain, %d stored", r.preload), r.growth, true)
	row("live, stateless", r.livePlain, true)
	row("live, service defaults", r.live, true)
	_ = tw.Flush()
	fmt.Fprintf(w, "\ndrain/loop %.2f (target >= %.2f), rules/drain %.2f (target >= %.2f), qc+derived/drain %.2f (target >= %.2f), drain peak RSS %.1f MB (target <= %d MB)\n",
		r.drain.rate()/r.loop.rate(), targetLoopRatio, r.rules.rate()/r.drain.rate(), targetRulesRatio,
		r.quality.rate()/r.drain.rate(), targetQCRatio, float64(r.drain.peakRSS)/(1<<20), targetPeakRSS>>20)
	fmt.Fprintf(w, "live p99 stateless %s in the worst of %d runs %v, with the defaults %s (target <= %s); CPU/reading live stateless %s vs drain %s\n",
		r.livePlain.worstP99().Round(100*time.Microsecond), max(len(r.livePlain.p99s), 1), roundAll(r.livePlain.p99s),
		r.live.p99.Round(100*time.Microsecond), targetP99, r.livePlain.cpuPerReading(), r.drain.cpuPerReading())
	fmt.Fprintf(w, "derived/drain %.2f (target >= %.2f)\n", r.derived.rate()/r.drain.rate(), targetDerivedRatio)
	fmt.Fprintf(w, "rollups on/off %.2f (target >= %.2f), rollups settled %s after the drain, live rollup lag p99 %s (target <= %s)\n",
		r.rollups.rate()/r.drain.rate(), targetRollupsRatio, r.rollups.settled.Round(time.Millisecond),
		r.live.rollupLagP99.Round(time.Millisecond), targetRollupLagP99)
	r.rollups.reads.print(w, "after the rollups drain")
	r.growth.reads.print(w, "after the growth drain")
	fmt.Fprintf(w, "growth/drain %.2f (target >= %.2f) with %d readings stored; drain of %d %.0f readings/s vs drain of %d %.0f readings/s (%.2f)\n",
		r.growth.rate()/r.drain.rate(), targetGrowthRatio, r.preload,
		r.drain.readings, r.drain.rate(), r.short.readings, r.short.rate(), r.drain.rate()/r.short.rate())
	r.api.print(w)
}

// failures lists the checks the run failed: correctness first, then targets.
func (r report) failures() []string {
	var out []string
	for _, p := range []struct {
		name string
		res  result
	}{{"drain", r.drain}, {"short drain", r.short}, {"rules", r.rules}, {"derived", r.derived}, {"qc", r.quality}, {"rollups", r.rollups}, {"growth", r.growth}, {"live stateless", r.livePlain}, {"live", r.live}} {
		if p.res.duplicates != 0 {
			out = append(out, fmt.Sprintf("%s: %d duplicated readings", p.name, p.res.duplicates))
		}
		if p.res.pending != 0 {
			out = append(out, fmt.Sprintf("%s: %d entries still pending", p.name, p.res.pending))
		}
	}
	if ratio := r.drain.rate() / r.loop.rate(); ratio < targetLoopRatio {
		out = append(out, fmt.Sprintf("drain is %.2f x the minimal loop, target %.2f", ratio, targetLoopRatio))
	}
	if ratio := r.rules.rate() / r.drain.rate(); ratio < targetRulesRatio {
		out = append(out, fmt.Sprintf("drain with threshold rules is %.2f x the drain, target %.2f", ratio, targetRulesRatio))
	}
	if ratio := r.quality.rate() / r.drain.rate(); ratio < targetQCRatio {
		out = append(out, fmt.Sprintf("drain with quality control and derived quantities is %.2f x the drain, target %.2f", ratio, targetQCRatio))
	}
	if ratio := r.derived.rate() / r.drain.rate(); ratio < targetDerivedRatio {
		out = append(out, fmt.Sprintf("drain with derived quantities is %.2f x the drain, target %.2f", ratio, targetDerivedRatio))
	}
	if ratio := r.rollups.rate() / r.drain.rate(); ratio < targetRollupsRatio {
		out = append(out, fmt.Sprintf("drain with rollups is %.2f x the drain without, target %.2f", ratio, targetRollupsRatio))
	}
	for _, p := range []struct {
		name  string
		reads rollupReads
	}{{"rollups drain", r.rollups.reads}, {"growth drain", r.growth.reads}} {
		if p.reads.yearOfDays > targetRollupRead || p.reads.dayOf5m > targetRollupRead {
			out = append(out, fmt.Sprintf("rollup reads after the %s p99 %s (year of days), %s (day of 5-minute rows), target %s",
				p.name, p.reads.yearOfDays, p.reads.dayOf5m, targetRollupRead))
		}
	}
	if r.live.rollupLagP99 > targetRollupLagP99 {
		out = append(out, fmt.Sprintf("live rollup lag p99 %s, target %s", r.live.rollupLagP99, targetRollupLagP99))
	}
	if ratio := r.growth.rate() / r.drain.rate(); ratio < targetGrowthRatio {
		out = append(out, fmt.Sprintf("drain with %d readings stored is %.2f x the drain, target %.2f", r.preload, ratio, targetGrowthRatio))
	}
	if p99 := r.livePlain.worstP99(); p99 > targetP99 {
		out = append(out, fmt.Sprintf("live stateless p99 %s in its worst run, target %s in every run", p99, targetP99))
	}
	if r.live.p99 > targetP99 {
		out = append(out, fmt.Sprintf("live p99 with the defaults %s, target %s", r.live.p99, targetP99))
	}
	if r.drain.peakRSS > targetPeakRSS {
		out = append(out, fmt.Sprintf("drain peak RSS %.1f MB, target %d MB", float64(r.drain.peakRSS)/(1<<20), targetPeakRSS>>20))
	}
	if r.livePlain.cpuPerReading() > r.drain.cpuPerReading() {
		out = append(out, fmt.Sprintf("CPU per reading live stateless %s > drain %s", r.livePlain.cpuPerReading(), r.drain.cpuPerReading()))
	}
	return append(out, r.api.failures()...)
}

// roundAll rounds each of ds to 0.1 ms, for printing.
func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(100 * time.Microsecond)
	}
	return out
}

// print writes the reads' line of the report, for the phase named after.
func (r rollupReads) print(w io.Writer, after string) {
	fmt.Fprintf(w, "rollup reads p99 %s, %d raw readings stored", after, r.raw)
	if r.raw < targetRollupReadRaw {
		fmt.Fprintf(w, " (fewer than the target's %d)", targetRollupReadRaw)
	}
	if r.rebuild > 0 {
		fmt.Fprintf(w, ", rollups of %s rebuilt in %s (%d 5-minute buckets)", readStation, r.rebuild.Round(time.Millisecond), r.buckets)
	}
	fmt.Fprintf(w, ": a year of daily rows %s (%d rows), a day of 5-minute rows %s (%d rows) (target <= %s)\n",
		r.yearOfDays.Round(10*time.Microsecond), r.days, r.dayOf5m.Round(10*time.Microsecond), r.fiveMinutes, targetRollupRead)
}
