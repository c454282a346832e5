package rollup

import (
	"fmt"
	"strings"
)

// Table names are the storage contract (DESIGN.md §14): do not rename.
const (
	table5m = "readings_5m"
	table1h = "readings_1h"
	table1d = "readings_1d"
)

// The recomputation statements. Each builds a CTE with one row per bucket
// (station, sensor, bucket, bucket_end, kind, and the aggregates of every
// kind), which upsert turns into rows of the kind's columns. Buckets are
// recomputed from what they are made of: 5-minute buckets from readings,
// hours from their 5-minute buckets, days from their hours or, in zones
// whose days do not start on a whole UTC hour, from their 5-minute
// buckets. They are never adjusted by a difference, so they cannot drift:
// what changes is recomputed whole, and only readings added after all
// those a row counts are added to it (appended, see from5mReadings and
// recompute5m).

// from5mReadings aggregates 5-minute buckets from readings. $1 station[],
// $2 sensor[], $3 bucket[], $4 kind[], $5 weight[] (the WeightedBy sensor
// of a vector kind, else empty), $6 appended_from[] (the bucket's
// invalidation's changed_from, migrations 0011 and 0015; the zero time
// when it is -infinity). Readings flagged 4 (fail) count nowhere. A weight is the
// reading of the weight sensor at the same station and time; the scalar
// subquery runs only for vector buckets.
//
// A bucket whose row counts every reading up to its through, and whose
// changes since all lie after it (appended_from > through: readings
// inserted, changed or deleted there, none of which the row counts), is
// appended to: only the readings after through are read, and
// added to the row (the counts and sums added, the extremes compared,
// earlier ones winning ties, the last replaced). Sums then add in another
// order than a whole recomputation would, which changes a mean by a
// rounding (1e-16 of it) per pass, never by a reading. A vector bucket
// follows the same rule with the changes of its weight sensor's bucket
// counted as its own (recomputer.withWeighted): a weight stored, changed
// or deleted at or before through re-weighs a reading the row counts, and
// makes the bucket recomputed whole.
//
// The subquery of the readings is not flattened (OFFSET 0), so that a
// reading's weight is looked up once, not once for each aggregate that
// uses it.
const from5mReadings = `WITH k AS (
  SELECT k.station, k.sensor, k.bucket, k.kind, k.weight, m.appending,
         CASE WHEN m.appending THEN t.through + interval '1 microsecond' ELSE k.bucket END AS lo,
         t.count AS t_count, t.avg AS t_avg, t.min AS t_min, t.max AS t_max, t.sum AS t_sum,
         t.min_ts AS t_min_ts, t.max_ts AS t_max_ts, t.last AS t_last, t.last_ts AS t_last_ts, t.through AS t_through,
         t.vector_x AS t_vector_x, t.vector_y AS t_vector_y, t.vector_n AS t_vector_n,
         t.unit_x AS t_unit_x, t.unit_y AS t_unit_y
  FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::timestamptz[])
    AS k(station, sensor, bucket, kind, weight, appended_from)
  LEFT JOIN readings_5m t ON (t.station, t.sensor, t.bucket) = (k.station, k.sensor, k.bucket)
  CROSS JOIN LATERAL (SELECT coalesce(k.appended_from > t.through, false) AS appending) m
), read AS (
  SELECT k.*, a.*
  FROM k CROSS JOIN LATERAL (
    SELECT count(*)::bigint AS count, avg(r.value) AS avg, min(r.value) AS min, max(r.value) AS max,
           (array_agg(r.ts ORDER BY r.value, r.ts))[1] AS min_ts,
           (array_agg(r.ts ORDER BY r.value DESC, r.ts))[1] AS max_ts,
           sum(r.value) AS sum,
           (array_agg(r.value ORDER BY r.ts DESC))[1] AS last, max(r.ts) AS last_ts,
           sum(r.w * sin(radians(r.value))) AS vector_x, sum(r.w * cos(radians(r.value))) AS vector_y,
           count(r.w)::bigint AS vector_n,
           sum(sin(radians(r.value))) AS unit_x, sum(cos(radians(r.value))) AS unit_y
    FROM (
      SELECT r.ts, r.value,
             (SELECT w.value FROM readings w
              WHERE k.kind = 'vector' AND k.weight <> ''
                AND w.station = k.station AND w.sensor = k.weight AND w.ts = r.ts AND w.qc_flag <> 4) AS w
      FROM readings r
      WHERE r.station = k.station AND r.sensor = k.sensor
        AND r.ts >= k.lo AND r.ts < k.bucket + interval '5 minutes' AND r.qc_flag <> 4
      OFFSET 0
    ) r
  ) a
), agg AS (
  SELECT station, sensor, bucket, bucket + interval '5 minutes' AS bucket_end, kind,
         CASE WHEN appending THEN t_count + count ELSE count END AS count,
         CASE WHEN NOT appending THEN avg WHEN count = 0 THEN t_avg
              ELSE (t_avg * t_count + sum) / (t_count + count) END AS avg,
         CASE WHEN appending THEN least(t_min, min) ELSE min END AS min,
         CASE WHEN appending THEN greatest(t_max, max) ELSE max END AS max,
         CASE WHEN appending AND coalesce(min >= t_min, true) THEN t_min_ts ELSE min_ts END AS min_ts,
         CASE WHEN appending AND coalesce(max <= t_max, true) THEN t_max_ts ELSE max_ts END AS max_ts,
         CASE WHEN appending THEN t_sum + coalesce(sum, 0) ELSE sum END AS sum,
         CASE WHEN appending AND count = 0 THEN t_last ELSE last END AS last,
         CASE WHEN appending AND count = 0 THEN t_last_ts ELSE last_ts END AS last_ts,
         CASE WHEN appending THEN coalesce(t_vector_x + vector_x, t_vector_x, vector_x) ELSE vector_x END AS vector_x,
         CASE WHEN appending THEN coalesce(t_vector_y + vector_y, t_vector_y, vector_y) ELSE vector_y END AS vector_y,
         CASE WHEN appending THEN coalesce(t_vector_n, 0) + vector_n ELSE vector_n END AS vector_n,
         CASE WHEN appending THEN coalesce(t_unit_x + unit_x, t_unit_x, unit_x) ELSE unit_x END AS unit_x,
         CASE WHEN appending THEN coalesce(t_unit_y + unit_y, t_unit_y, unit_y) ELSE unit_y END AS unit_y,
         CASE WHEN appending THEN greatest(t_through, last_ts) ELSE last_ts END AS through
  FROM read
)`

// fromChildren aggregates the parent buckets of keys (a query of station,
// sensor, kind, bucket and bucket_end, and of what children use) from the
// rows that children (a query of childColumns of readings_5m or
// readings_1h, filtered by the key k) returns. An hour's or day's mean is the count-weighted mean of its
// children's means; its minimum and maximum times are the earliest among
// equal extremes, as in a 5-minute bucket.
func fromChildren(keys, children string) string {
	return `WITH k AS (` + keys + `), agg AS (
  SELECT k.station, k.sensor, k.bucket, k.bucket_end, k.kind, a.*
  FROM k CROSS JOIN LATERAL (
    SELECT coalesce(sum(c.count), 0)::bigint AS count,
           sum(c.avg * c.count) FILTER (WHERE c.avg IS NOT NULL) / nullif(sum(c.count) FILTER (WHERE c.avg IS NOT NULL), 0) AS avg,
           min(c.min) AS min, max(c.max) AS max,
           (array_agg(c.min_ts ORDER BY c.min, c.min_ts) FILTER (WHERE c.min IS NOT NULL))[1] AS min_ts,
           (array_agg(c.max_ts ORDER BY c.max DESC, c.max_ts) FILTER (WHERE c.max IS NOT NULL))[1] AS max_ts,
           sum(c.sum) AS sum,
           (array_agg(c.last ORDER BY c.last_ts DESC) FILTER (WHERE c.last_ts IS NOT NULL))[1] AS last, max(c.last_ts) AS last_ts,
           sum(c.vector_x) AS vector_x, sum(c.vector_y) AS vector_y, coalesce(sum(c.vector_n), 0)::bigint AS vector_n,
           sum(c.unit_x) AS unit_x, sum(c.unit_y) AS unit_y
    FROM (` + children + `) c
  ) a
)`
}

// childColumns are the columns of a rollup row that its parent aggregates.
const childColumns = `c.count, c.avg, c.min, c.max, c.min_ts, c.max_ts, c.sum, c.last, c.last_ts,
  c.vector_x, c.vector_y, c.vector_n, c.unit_x, c.unit_y`

// fiveMinuteChildren are the 5-minute buckets of each hour.
const fiveMinuteChildren = `SELECT ` + childColumns + ` FROM readings_5m c
    WHERE c.station = k.station AND c.sensor = k.sensor AND c.bucket >= k.bucket AND c.bucket < k.bucket_end`

// dayChildren are the hours of a day that starts and ends on whole UTC
// hours (k.hourly: every day of a zone whose offsets are whole hours), else
// its 5-minute buckets (half- and quarter-hour zones, such as
// Australia/Lord_Howe's +10:30, or Asia/Kolkata). A day read from its
// hours reads at most 25 rows instead of up to 300: at the end of a day,
// recomputing the days of 2,080 series from their 5-minute buckets took
// 750 ms, from their hours 67 ms. The hours are recomputed before the days
// in every pass, so both sources hold the same readings. The branch a key
// does not take is never run (its condition on k is a one-time filter).
const dayChildren = `SELECT ` + childColumns + ` FROM readings_1h c
    WHERE k.hourly AND c.station = k.station AND c.sensor = k.sensor AND c.bucket >= k.bucket AND c.bucket < k.bucket_end
  UNION ALL
  SELECT ` + childColumns + ` FROM readings_5m c
    WHERE NOT k.hourly AND c.station = k.station AND c.sensor = k.sensor AND c.bucket >= k.bucket AND c.bucket < k.bucket_end`

// hourKeys are the hours of the 5-minute buckets $1 station[], $2
// sensor[], $3 bucket[], $4 kind[]; hours are aligned to UTC.
const hourKeys = `SELECT DISTINCT c.station, c.sensor, c.kind, date_bin('1 hour', c.bucket, 'epoch') AS bucket,
       date_bin('1 hour', c.bucket, 'epoch') + interval '1 hour' AS bucket_end
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS c(station, sensor, bucket, kind)`

// dayKeys are the station-local days of the 5-minute buckets $1 station[],
// $2 sensor[], $3 bucket[], $4 kind[]: from the local midnight to the
// next, 23 or 25 hours on DST days, in the station's zone or else $5 (the
// default zone). A 5-minute bucket belongs to the day its start is in.
// hourly says whether the day starts and ends on whole UTC hours
// (date_bin from the epoch does not depend on the session's zone).
var dayKeys = `SELECT DISTINCT c.station, c.sensor, c.kind, d.bucket, e.bucket_end,
       date_bin('1 hour', d.bucket, 'epoch') = d.bucket AND date_bin('1 hour', e.bucket_end, 'epoch') = e.bucket_end AS hourly
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS c(station, sensor, bucket, kind)
` + localDay("$5")

// localDay joins, to rows c of 5-minute buckets (c.station, c.bucket), the
// station-local day of each: from d.bucket, the local midnight, to
// e.bucket_end, the next (23 or 25 hours later on DST days), in the
// station's zone or else the default zone, the parameter zone.
func localDay(zone string) string {
	return `LEFT JOIN stations s ON s.id = c.station
CROSS JOIN LATERAL (SELECT coalesce(s.timezone, ` + zone + `::text) AS tz) z
CROSS JOIN LATERAL (SELECT date_trunc('day', c.bucket, z.tz) AS bucket) d
CROSS JOIN LATERAL (SELECT (d.bucket AT TIME ZONE z.tz + interval '1 day') AT TIME ZONE z.tz AS bucket_end) e`
}

// appendedParents extends from5mReadings: it aggregates, in the CTEs
// hour_agg and day_agg, the new rows of the hours and days that hold one
// 5-minute bucket of this statement, changed by readings added to it (a
// bucket appended to, or one without a row before, whose readings its
// parents did not count): such a parent is aggregated from its own row and
// the readings added (combined), as fromChildren would from all its
// children, without reading them. $7 says whether parents may be appended
// to at all (Rebuild recomputes them whole); $8 is the default zone of the
// days. The CTE parents says which 5-minute buckets have an hour or a day
// not appended to: those are recomputed whole afterwards, from all their
// children (recompute1h, recompute1d). Each parent row is looked up by its
// key (a lateral subquery kept apart by OFFSET 0): joined, small rollup
// tables drew a scan of the whole table.
var appendedParents = `, delta AS (
  SELECT c.station, c.sensor, c.kind, c.bucket, date_bin('1 hour', c.bucket, 'epoch') AS hour, d.bucket AS day, e.bucket_end AS day_end,
         $7::bool AND (c.appending OR c.t_count IS NULL) AS added, ` + childColumns + `
  FROM read c
  ` + localDay("$8") + `
), parents AS (
  SELECT delta.*,
         added AND count(*) OVER (PARTITION BY station, sensor, hour) = 1 AS hour_appended,
         added AND count(*) OVER (PARTITION BY station, sensor, day) = 1 AS day_appended
  FROM delta
), hour_agg AS (
  SELECT c.station, c.sensor, c.hour AS bucket, c.hour + interval '1 hour' AS bucket_end, c.kind, ` + combined + `
  FROM parents c LEFT JOIN LATERAL (
    SELECT * FROM readings_1h p WHERE (p.station, p.sensor, p.bucket) = (c.station, c.sensor, c.hour) OFFSET 0) p ON true
  WHERE c.hour_appended
), day_agg AS (
  SELECT c.station, c.sensor, c.day AS bucket, c.day_end AS bucket_end, c.kind, ` + combined + `
  FROM parents c LEFT JOIN LATERAL (
    SELECT * FROM readings_1d p WHERE (p.station, p.sensor, p.bucket) = (c.station, c.sensor, c.day) OFFSET 0) p ON true
  WHERE c.day_appended
)`

// combined aggregates a parent row p (null when there is none) and the
// aggregates c of readings added to one of its children into the
// parent's columns, as fromChildren aggregates children: counts and sums
// added (a sum of nulls is null), the extremes compared with the earliest
// time winning ties, the last one the latest.
var combined = `coalesce(p.count, 0) + c.count AS count,
         CASE WHEN p.avg IS NULL THEN c.avg WHEN c.avg IS NULL THEN p.avg
              ELSE (p.avg * p.count + c.avg * c.count) / nullif(p.count + c.count, 0) END AS avg,
         least(p.min, c.min) AS min, greatest(p.max, c.max) AS max,
         CASE WHEN c.min IS NULL OR c.min > p.min THEN p.min_ts WHEN p.min IS NULL OR c.min < p.min THEN c.min_ts
              ELSE least(p.min_ts, c.min_ts) END AS min_ts,
         CASE WHEN c.max IS NULL OR c.max < p.max THEN p.max_ts WHEN p.max IS NULL OR c.max > p.max THEN c.max_ts
              ELSE least(p.max_ts, c.max_ts) END AS max_ts,
         ` + summed("sum") + ` AS sum,
         CASE WHEN c.last_ts IS NULL OR c.last_ts < p.last_ts THEN p.last ELSE c.last END AS last,
         greatest(p.last_ts, c.last_ts) AS last_ts,
         ` + summed("vector_x") + ` AS vector_x, ` + summed("vector_y") + ` AS vector_y,
         coalesce(p.vector_n, 0) + c.vector_n AS vector_n,
         ` + summed("unit_x") + ` AS unit_x, ` + summed("unit_y") + ` AS unit_y`

// summed is the sum of the column of p and c, null when both are.
func summed(column string) string {
	return `CASE WHEN p.` + column + ` IS NULL THEN c.` + column + ` WHEN c.` + column + ` IS NULL THEN p.` + column +
		` ELSE p.` + column + ` + c.` + column + ` END`
}

// upsertTail writes agg into table: each kind's columns (instant: avg,
// min, max and their times; amount: sum, max and its time; vector: avg,
// the vector mean in [0, 360), null when the vectors cancel out, and its
// sums; last: last and its time), count and coverage everywhere. A bucket
// without readings is deleted. A row is written only when it changes, so
// updated_at says when the rollup last changed.
//
// The vector mean is atan2 of the summed sine and cosine (the unit-vector
// mean of WMO-No. 8, Part I, 5.1.2: mean wind direction), of the weighted
// sums when any reading of the bucket had a weight, else of the unweighted
// ones. coverage is count ÷ (bucket length ÷ the series' expected interval,
// sensor_status.interval_s or else learned_interval_s), null when neither
// is known. The extra columns of agg (readings_5m's through) are written as
// they are.
func upsertTail(table string, extra ...string) string {
	ctes, insert := upsert(table, "agg", extra...)
	return ctes + "\n" + insert
}

// upsert is upsertTail for the rows of the CTE agg: the CTEs it adds
// (named after agg) and the statement that writes them.
func upsert(table, agg string, extra ...string) (ctes, insert string) {
	prefixed := func(prefix string) string {
		var b strings.Builder
		for _, c := range extra {
			b.WriteString(", " + prefix + c)
		}
		return b.String()
	}
	var assigned strings.Builder
	for _, c := range extra {
		assigned.WriteString(", " + c + " = EXCLUDED." + c)
	}
	ctes = fmt.Sprintf(`, %[3]s_v AS (
  SELECT agg.*,
         CASE WHEN agg.vector_n > 0 THEN agg.vector_x ELSE agg.unit_x END AS x,
         CASE WHEN agg.vector_n > 0 THEN agg.vector_y ELSE agg.unit_y END AS y
  FROM %[3]s agg
), %[3]s_out AS (
  SELECT v.station, v.sensor, v.bucket, v.count,
         CASE v.kind WHEN 'instant' THEN v.avg
                     WHEN 'vector' THEN CASE WHEN sqrt(v.x * v.x + v.y * v.y) >= 1e-9
                                             THEN (degrees(atan2(v.x, v.y)) + 360) - 360 * floor((degrees(atan2(v.x, v.y)) + 360) / 360) END
         END AS avg,
         CASE WHEN v.kind = 'instant' THEN v.min END AS min,
         CASE WHEN v.kind IN ('instant', 'amount') THEN v.max END AS max,
         CASE WHEN v.kind = 'amount' THEN v.sum END AS sum,
         CASE WHEN v.kind = 'instant' THEN v.min_ts END AS min_ts,
         CASE WHEN v.kind IN ('instant', 'amount') THEN v.max_ts END AS max_ts,
         CASE WHEN v.kind = 'last' THEN v.last END AS last,
         CASE WHEN v.kind = 'last' THEN v.last_ts END AS last_ts,
         v.count / nullif(extract(epoch FROM v.bucket_end - v.bucket)::float8 / coalesce(ss.interval_s, ss.learned_interval_s), 0) AS coverage,
         CASE WHEN v.kind = 'vector' THEN v.vector_x END AS vector_x,
         CASE WHEN v.kind = 'vector' THEN v.vector_y END AS vector_y,
         CASE WHEN v.kind = 'vector' THEN v.vector_n END AS vector_n,
         CASE WHEN v.kind = 'vector' THEN v.unit_x END AS unit_x,
         CASE WHEN v.kind = 'vector' THEN v.unit_y END AS unit_y%[2]s
  FROM %[3]s_v v
  LEFT JOIN sensor_status ss ON (ss.station, ss.sensor) = (v.station, v.sensor)
), %[3]s_gone AS (
  DELETE FROM %[1]s t USING %[3]s_out out
  WHERE out.count = 0 AND (t.station, t.sensor, t.bucket) = (out.station, out.sensor, out.bucket)
)`, table, prefixed("v."), agg)
	insert = fmt.Sprintf(`INSERT INTO %[1]s AS t (station, sensor, bucket, count, avg, min, max, sum, min_ts, max_ts, last, last_ts, coverage,
                        vector_x, vector_y, vector_n, unit_x, unit_y%[2]s, updated_at)
SELECT station, sensor, bucket, count, avg, min, max, sum, min_ts, max_ts, last, last_ts, coverage,
       vector_x, vector_y, vector_n, unit_x, unit_y%[2]s, now()
FROM %[6]s_out out WHERE count > 0
ORDER BY station, sensor, bucket
ON CONFLICT (station, sensor, bucket) DO UPDATE SET
  count = EXCLUDED.count, avg = EXCLUDED.avg, min = EXCLUDED.min, max = EXCLUDED.max, sum = EXCLUDED.sum,
  min_ts = EXCLUDED.min_ts, max_ts = EXCLUDED.max_ts, last = EXCLUDED.last, last_ts = EXCLUDED.last_ts,
  coverage = EXCLUDED.coverage, vector_x = EXCLUDED.vector_x, vector_y = EXCLUDED.vector_y,
  vector_n = EXCLUDED.vector_n, unit_x = EXCLUDED.unit_x, unit_y = EXCLUDED.unit_y%[3]s, updated_at = EXCLUDED.updated_at
WHERE (t.count, t.avg, t.min, t.max, t.sum, t.min_ts, t.max_ts, t.last, t.last_ts, t.coverage,
       t.vector_x, t.vector_y, t.vector_n, t.unit_x, t.unit_y%[4]s)
      IS DISTINCT FROM
      (EXCLUDED.count, EXCLUDED.avg, EXCLUDED.min, EXCLUDED.max, EXCLUDED.sum, EXCLUDED.min_ts, EXCLUDED.max_ts,
       EXCLUDED.last, EXCLUDED.last_ts, EXCLUDED.coverage, EXCLUDED.vector_x, EXCLUDED.vector_y, EXCLUDED.vector_n,
       EXCLUDED.unit_x, EXCLUDED.unit_y%[5]s)`, table, prefixed(""), assigned.String(), prefixed("t."), prefixed("EXCLUDED."), agg)
	return ctes, insert
}

// The statements that recompute buckets, built once. recompute5m
// recomputes 5-minute buckets (from5mReadings) and appends to their hours
// and days what it can (appendedParents), in one statement; it returns the
// 5-minute buckets whose hours and days recompute1h and recompute1d then
// recompute whole.
var (
	recompute5m = recomputeFiveMinutes()
	recompute1h = fromChildren(hourKeys, fiveMinuteChildren) + upsertTail(table1h)
	recompute1d = fromChildren(dayKeys, dayChildren) + upsertTail(table1d)
)

// recomputeFiveMinutes builds recompute5m: from5mReadings, writing its
// rows, then appendedParents, writing the hours and days it appended to,
// and the 5-minute buckets whose parents it left to the other statements.
func recomputeFiveMinutes() string {
	ctes5m, insert5m := upsert(table5m, "agg", "through")
	ctes1h, insert1h := upsert(table1h, "hour_agg")
	ctes1d, insert1d := upsert(table1d, "day_agg")
	return from5mReadings + ctes5m + `, put_5m AS (
` + insert5m + `
)` + appendedParents + ctes1h + `, put_1h AS (
` + insert1h + `
)` + ctes1d + `, put_1d AS (
` + insert1d + `
)
SELECT station, sensor, bucket FROM parents WHERE NOT (hour_appended AND day_appended)`
}
