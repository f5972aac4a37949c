use proptest::prelude::*;
use rampart_time::{Duration, Instant};

use crate::*;

fn at(ns: u64) -> Instant {
    Instant::from_nanos(ns)
}

/// One hot-path call, for oracle tests.
#[derive(Clone, Debug)]
enum Ev {
    Offered(u16),
    Admitted(u16),
    Completed(u16, u64),
    Rejected(u16, u16),
    Count(u16, u64),
}

const N_CLASSES: u16 = 2;
const N_REASONS: u16 = 3;
const N_COUNTERS: u16 = 2;

fn names_with_phases(phases: &[(u64, u64)]) -> Names {
    let mut n = Names::new();
    n.add_class("legit").unwrap();
    n.add_class("attack.stuffing").unwrap();
    for r in ["rate_limited", "auth.expired", "timeout"] {
        n.add_reason(r).unwrap();
    }
    n.add_counter("security.takeovers").unwrap();
    n.add_counter("security.revoked_accepted").unwrap();
    n.add_gauge("instances.in_service").unwrap();
    for (i, &(s, e)) in phases.iter().enumerate() {
        n.add_phase(&format!("p{i}"), at(s), at(s + e.max(1)))
            .unwrap();
    }
    n
}

/// Plays `events` (sorted by time) through a recorder with interval
/// `interval_ns`, closing every boundary like the kernel's sampling hook, and
/// setting the gauge to `gauge(k)` before boundary `k`.
fn play<S: RowSink>(
    config: RecorderConfig,
    names: Names,
    events: &[(u64, Ev)],
    end_ns: u64,
    gauge: impl Fn(u64) -> f64,
    versions: impl Fn(u64) -> Vec<(u32, u32)>,
    sink: &mut S,
) -> Result<RunMetrics, S::Error> {
    let interval_ns = config.interval.as_nanos();
    let mut rec = Recorder::new(config, names).unwrap();
    let g = rec.names().gauge("instances.in_service").unwrap();
    let mut next = interval_ns;
    let mut k = 1;
    let boundary = |rec: &mut Recorder, t: u64, k: u64, sink: &mut S| {
        rec.set_gauge(g, gauge(k));
        rec.set_instance_versions(&versions(k));
        rec.close_interval(at(t), sink)
    };
    for (t, ev) in events {
        while *t >= next {
            boundary(&mut rec, next, k, sink)?;
            next += interval_ns;
            k += 1;
        }
        let now = at(*t);
        match *ev {
            Ev::Offered(c) => rec.offered(now, ClassId(c)),
            Ev::Admitted(c) => rec.admitted(now, ClassId(c)),
            Ev::Completed(c, us) => rec.completed(now, ClassId(c), Duration::from_micros(us)),
            Ev::Rejected(c, r) => rec.rejected(now, ClassId(c), ReasonId(r)),
            Ev::Count(k, n) => rec.count(now, CounterId(k), n),
        }
    }
    while next <= end_ns {
        boundary(&mut rec, next, k, sink)?;
        next += interval_ns;
        k += 1;
    }
    rec.set_gauge(g, gauge(k));
    rec.finish(at(end_ns), sink)
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (0..N_CLASSES).prop_map(Ev::Offered),
        (0..N_CLASSES).prop_map(Ev::Admitted),
        (0..N_CLASSES, 0u64..5_000_000).prop_map(|(c, l)| Ev::Completed(c, l)),
        (0..N_CLASSES, 0..N_REASONS).prop_map(|(c, r)| Ev::Rejected(c, r)),
        (0..N_COUNTERS, 0u64..4).prop_map(|(k, n)| Ev::Count(k, n)),
    ]
}

fn events(end_ns: u64) -> impl Strategy<Value = Vec<(u64, Ev)>> {
    prop::collection::vec((0..end_ns, ev()), 0..300).prop_map(|mut v| {
        v.sort_by_key(|(t, _)| *t);
        v
    })
}

fn small_config(interval_ns: u64) -> RecorderConfig {
    RecorderConfig {
        interval: Duration::from_nanos(interval_ns),
        plot_points_max: 4,
        heatmap_points_max: 4,
        heatmap_instances_max: 3,
    }
}

/// Oracle totals straight from the event list, for events with `t` in
/// `[from, to)`: (offered, admitted, completed, rejected per reason, latency
/// list) per class and counters.
#[derive(Debug, Default, PartialEq)]
struct Oracle {
    offered: Vec<u64>,
    admitted: Vec<u64>,
    completed: Vec<u64>,
    rejected: Vec<Vec<u64>>,
    latency_us: Vec<Vec<u64>>,
    counters: Vec<u64>,
}

fn oracle(events: &[(u64, Ev)], from: u64, to: u64) -> Oracle {
    let nc = N_CLASSES as usize;
    let mut o = Oracle {
        offered: vec![0; nc],
        admitted: vec![0; nc],
        completed: vec![0; nc],
        rejected: vec![vec![0; N_REASONS as usize]; nc],
        latency_us: vec![Vec::new(); nc],
        counters: vec![0; N_COUNTERS as usize],
    };
    for (_, ev) in events.iter().filter(|(t, _)| from <= *t && *t < to) {
        match *ev {
            Ev::Offered(c) => o.offered[c as usize] += 1,
            Ev::Admitted(c) => o.admitted[c as usize] += 1,
            Ev::Completed(c, l) => {
                o.completed[c as usize] += 1;
                o.latency_us[c as usize].push(l);
            }
            Ev::Rejected(c, r) => o.rejected[c as usize][r as usize] += 1,
            Ev::Count(k, n) => o.counters[k as usize] += n,
        }
    }
    o
}

fn observed(names: &Names, t: &Totals) -> Oracle {
    let mut o = Oracle::default();
    for c in names.classes() {
        let ct = &t.classes[c];
        o.offered.push(ct.offered);
        o.admitted.push(ct.admitted);
        o.completed.push(ct.completed);
        o.rejected.push(
            names
                .reasons()
                .iter()
                .map(|r| ct.rejected_by_reason[r])
                .collect(),
        );
        o.latency_us.push(Vec::new());
    }
    o.counters = names.counters().iter().map(|k| t.counters[k]).collect();
    o
}

/// The exact order statistic hdrhistogram's `value_at_quantile` targets.
fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

/// hdrhistogram with two significant digits reports the top of the bucket
/// holding the value: never below it, at most 1% (or 1 µs) above.
fn assert_within_precision(exact_us: u64, reported_ms: f64) {
    let reported_us = reported_ms * 1000.0;
    let lo = exact_us as f64 - 1e-6;
    let hi = exact_us as f64 * 1.01 + 1.0;
    assert!(
        lo <= reported_us && reported_us <= hi,
        "exact {exact_us} µs, reported {reported_us} µs"
    );
}

fn check_latency(sorted: &[u64], l: &LatencySummary) {
    assert_eq!(l.count, sorted.len() as u64);
    if sorted.is_empty() {
        assert_eq!(l.p50, None);
        assert_eq!(l.max, None);
        return;
    }
    for (q, v) in [(0.5, l.p50), (0.9, l.p90), (0.99, l.p99), (0.999, l.p99_9)] {
        assert_within_precision(exact_quantile(sorted, q), v.unwrap());
    }
    assert_eq!(l.max, Some(*sorted.last().unwrap() as f64 / 1000.0));
}

/// 64 cases by default (the whole suite runs in well under a second);
/// `PROPTEST_CASES=N` raises it locally.
fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    ProptestConfig::with_cases(n)
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn run_and_phase_totals_match_an_oracle_over_the_raw_events(
        evs in events(1_000),
        phases in prop::collection::vec((0u64..1_000, 1u64..600), 0..3),
        end_extra in 0u64..150,
    ) {
        let names = names_with_phases(&phases);
        let end = 1_000 + end_extra;
        let mut sink = VecSink::default();
        let m = play(small_config(100), names.clone(), &evs, end, |k| k as f64, |_| vec![], &mut sink).unwrap();

        let want = oracle(&evs, 0, u64::MAX);
        prop_assert_eq!(observed(&names, &m.totals), Oracle { latency_us: vec![Vec::new(); 2], ..want });
        for (i, phase) in names.phases().iter().enumerate() {
            let (s, e) = (phase.start.as_nanos(), phase.end.as_nanos());
            let mut want = oracle(&evs, s, e);
            let got = &m.phases[i].totals;
            for (c, name) in names.classes().iter().enumerate() {
                want.latency_us[c].sort_unstable();
                check_latency(&want.latency_us[c], &got.classes[name].latency_ms);
            }
            prop_assert_eq!(observed(&names, got), Oracle { latency_us: vec![Vec::new(); 2], ..want });
        }
    }

    #[test]
    fn totals_equal_the_sum_of_interval_rows(
        evs in events(1_000),
        end in 1u64..1_200,
    ) {
        let evs: Vec<_> = evs.into_iter().filter(|(t, _)| *t < end).collect();
        let names = names_with_phases(&[]);
        let mut sink = VecSink::default();
        let m = play(small_config(100), names.clone(), &evs, end, |_| 1.0, |_| vec![], &mut sink).unwrap();
        prop_assert_eq!(m.intervals, sink.rows.len() as u64);
        prop_assert_eq!(sink.rows.len() as u64, end.div_ceil(100));
        let col = |name: &str| sink.columns.iter().position(|c| c == name).unwrap();
        let sum = |name: &str| sink.rows.iter().map(|r| r.2[col(name)]).sum::<f64>();
        for c in names.classes() {
            let t = &m.totals.classes[c];
            prop_assert_eq!(sum(&format!("{c}.offered")), t.offered as f64);
            prop_assert_eq!(sum(&format!("{c}.admitted")), t.admitted as f64);
            prop_assert_eq!(sum(&format!("{c}.completed")), t.completed as f64);
            prop_assert_eq!(sum(&format!("{c}.rejected")), t.rejected as f64);
            for r in names.reasons() {
                prop_assert_eq!(sum(&format!("{c}.rejected.{r}")), t.rejected_by_reason[r] as f64);
            }
            let row_max = sink.rows.iter().map(|r| r.2[col(&format!("{c}.latency.max"))])
                .filter(|v| !v.is_nan()).fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
            prop_assert_eq!(row_max, t.latency_ms.max);
        }
        for r in names.reasons() {
            prop_assert_eq!(sum(&format!("rejected.{r}")), m.totals.rejected[r] as f64);
        }
        for k in names.counters() {
            prop_assert_eq!(sum(&format!("counters.{k}")), m.totals.counters[k] as f64);
        }
        // Rows tile time with no gap or overlap.
        for w in sink.rows.windows(2) {
            prop_assert_eq!(w[0].1, w[1].0);
        }
    }

    #[test]
    fn plot_series_keep_the_exact_global_min_and_max_and_stay_bounded(
        values in prop::collection::vec(-1e6f64..1e6, 1..600),
        cap in 2usize..20,
    ) {
        let names = names_with_phases(&[]);
        let n = values.len() as u64;
        let config = RecorderConfig { plot_points_max: cap, ..small_config(10) };
        let m = play(config, names, &[], n * 10, |k| values.get((k - 1) as usize).copied().unwrap_or(f64::NAN), |_| vec![], &mut NullSink).unwrap();
        let s = &m.series;
        let col = s.column("gauges.instances.in_service").unwrap();
        prop_assert!(col.max.len() <= cap);
        prop_assert_eq!(s.bucket_end_s.len(), col.max.len());
        prop_assert!(s.intervals_per_bucket.is_power_of_two());
        prop_assert!((col.max.len() as u64) * s.intervals_per_bucket >= n);
        let gmax = values.iter().copied().fold(f64::MIN, f64::max);
        let gmin = values.iter().copied().fold(f64::MAX, f64::min);
        prop_assert_eq!(col.max.iter().flatten().copied().fold(f64::MIN, f64::max), gmax);
        prop_assert_eq!(col.min.iter().flatten().copied().fold(f64::MAX, f64::min), gmin);
        // Bucket i covers intervals [i*w, (i+1)*w): its extremes are those of that slice.
        let w = s.intervals_per_bucket as usize;
        for (i, chunk) in values.chunks(w).enumerate() {
            prop_assert_eq!(col.max[i], Some(chunk.iter().copied().fold(f64::MIN, f64::max)));
            prop_assert_eq!(col.min[i], Some(chunk.iter().copied().fold(f64::MAX, f64::min)));
            prop_assert_eq!(s.bucket_end_s[i], (((i + 1) * w).min(values.len()) * 10) as f64 / 1e9);
        }
        prop_assert_eq!(m.totals.gauges["instances.in_service"].max, Some(gmax));
    }

    #[test]
    fn same_inputs_give_the_same_csv_and_json_bytes(evs in events(1_000)) {
        let run = || {
            let mut csv = CsvSink::new(Vec::new());
            let m = play(small_config(100), names_with_phases(&[(200, 300)]), &evs, 1_000,
                |k| k as f64 / 3.0, |k| vec![(1, k as u32), (2, 1)], &mut csv).unwrap();
            (csv.into_inner().unwrap(), m.to_json())
        };
        let (a, b) = (run(), run());
        prop_assert_eq!(&a.0, &b.0);
        prop_assert_eq!(&a.1, &b.1);
        let back: RunMetrics = serde_json::from_str(&a.1).unwrap();
        prop_assert_eq!(back.to_json(), a.1);
    }

    #[test]
    fn latency_percentiles_are_within_hdrhistogram_precision(
        lat in prop::collection::vec(0u64..3_600_000_000, 1..2_000),
    ) {
        let evs: Vec<_> = lat.iter().map(|&l| (0, Ev::Completed(0, l))).collect();
        let m = play(small_config(100), names_with_phases(&[]), &evs, 100, |_| 0.0, |_| vec![], &mut NullSink).unwrap();
        let mut sorted = lat.clone();
        sorted.sort_unstable();
        check_latency(&sorted, &m.totals.classes["legit"].latency_ms);
    }

    #[test]
    fn heatmap_rows_and_buckets_stay_bounded(
        fleets in prop::collection::vec(prop::collection::vec((0u32..10, 0u32..4), 0..6), 1..200),
    ) {
        let n = fleets.len() as u64;
        let m = play(small_config(10), names_with_phases(&[]), &[], n * 10, |_| 0.0,
            |k| fleets.get((k - 1) as usize).cloned().unwrap_or_default(), &mut NullSink).unwrap();
        let h = &m.policy_versions;
        prop_assert!(h.instances.len() <= 3);
        prop_assert!(h.bucket_end_s.len() <= 4);
        for row in &h.instances {
            prop_assert_eq!(row.versions.len(), h.bucket_end_s.len());
        }
        // Every sample lands in a tracked row or in the untracked count.
        let tracked: Vec<u32> = h.instances.iter().map(|r| r.instance).collect();
        let dropped: u64 = fleets.iter().flatten().filter(|(id, _)| !tracked.contains(id)).count() as u64;
        prop_assert_eq!(h.untracked_samples, dropped);
    }
}

#[test]
fn a_short_version_change_survives_downsampling_as_a_range() {
    let m = play(
        RecorderConfig {
            heatmap_points_max: 2,
            ..small_config(10)
        },
        names_with_phases(&[]),
        &[],
        80,
        |_| 0.0,
        |k| vec![(7, if k == 3 { 2 } else { 1 })],
        &mut NullSink,
    )
    .unwrap();
    let h = &m.policy_versions;
    assert_eq!(h.intervals_per_bucket, 4);
    assert_eq!(h.instances[0].instance, 7);
    assert_eq!(h.instances[0].versions, vec![Some([1, 2]), Some([1, 1])]);
}

#[test]
fn a_phase_boundary_inside_an_interval_splits_events_exactly() {
    let names = names_with_phases(&[(150, 100)]);
    let evs: Vec<_> = [100, 149, 150, 199, 249, 250]
        .iter()
        .map(|&t| (t, Ev::Offered(0)))
        .collect();
    let m = play(
        small_config(100),
        names,
        &evs,
        300,
        |_| 0.0,
        |_| vec![],
        &mut NullSink,
    )
    .unwrap();
    assert_eq!(m.lookup("legit.offered", Some("p0")).unwrap(), 3.0);
    assert_eq!(m.lookup("legit.offered", None).unwrap(), 6.0);
}

#[test]
fn finish_closes_a_partial_last_interval_and_only_once() {
    let mut sink = VecSink::default();
    let evs = vec![(250, Ev::Offered(0))];
    let m = play(
        small_config(100),
        names_with_phases(&[]),
        &evs,
        250,
        |_| 0.0,
        |_| vec![],
        &mut sink,
    )
    .unwrap();
    let bounds: Vec<_> = sink.rows.iter().map(|r| (r.0, r.1)).collect();
    // The event at exactly `end` still counts, in the last row.
    assert_eq!(
        bounds,
        vec![(at(0), at(100)), (at(100), at(200)), (at(200), at(250))]
    );
    assert_eq!(sink.rows[2].2[0], 1.0);
    assert_eq!(m.totals.classes["legit"].offered, 1);

    let mut sink = VecSink::default();
    play(
        small_config(100),
        names_with_phases(&[]),
        &[],
        200,
        |_| 0.0,
        |_| vec![],
        &mut sink,
    )
    .unwrap();
    assert_eq!(sink.rows.len(), 2, "an end on a boundary adds no row");
}

/// The table-test helper: builds a run, looks `path` up over `phase`, and
/// compares the value or the error message.
fn check(path: &str, phase: Option<&str>, want: Result<f64, &str>) {
    let evs = vec![
        (0, Ev::Offered(0)),
        (0, Ev::Offered(0)),
        (0, Ev::Admitted(0)),
        (10, Ev::Completed(0, 250_000)),
        (20, Ev::Rejected(0, 0)),
        (30, Ev::Rejected(1, 2)),
        (40, Ev::Count(0, 2)),
        (150, Ev::Count(0, 1)),
        (160, Ev::Completed(0, 100_000)),
    ];
    let m = play(
        small_config(100),
        names_with_phases(&[(100, 100)]),
        &evs,
        200,
        |k| k as f64 * 2.0,
        |_| vec![],
        &mut NullSink,
    )
    .unwrap();
    let got = m.lookup(path, phase).map_err(|e| e.to_string());
    match want {
        Ok(v) => assert_eq!(got, Ok(v), "{path}"),
        Err(msg) => assert_eq!(got.unwrap_err(), msg, "{path}"),
    }
}

#[test]
fn metric_paths_resolve_to_documented_values_and_units() {
    check("legit.offered", None, Ok(2.0));
    check("legit.completed", None, Ok(2.0));
    check("legit.rejected", None, Ok(1.0));
    check("legit.success_rate", None, Ok(2.0 / 3.0));
    // A count and its share have different names.
    check("legit.admitted", None, Ok(1.0));
    check("legit.admitted_rate", None, Ok(0.5));
    check("legit.failure_rate", None, Ok(1.0 - 2.0 / 3.0));
    check("legit.rejected.rate_limited", None, Ok(1.0));
    check("attack.stuffing.rejected.timeout", None, Ok(1.0));
    check("rejected.timeout", None, Ok(1.0));
    check("legit.latency.max", None, Ok(250.0));
    check("legit.latency.max", Some("p0"), Ok(100.0));
    check("legit.latency.count", None, Ok(2.0));
    check("counters.security.takeovers", None, Ok(3.0));
    check("counters.security.takeovers", Some("p0"), Ok(1.0));
    check("security.takeovers", None, Ok(3.0));
    // Gauge sampled as 2k at boundary k (k = 1, 2) and the finish; the
    // phase [100, 200) owns the sample at 200 only.
    check("gauges.instances.in_service.max", None, Ok(4.0));
    check("gauges.instances.in_service.mean", None, Ok(3.0));
    check("gauges.instances.in_service.min", Some("p0"), Ok(4.0));
    check("instances.in_service", None, Ok(4.0));
}

#[test]
fn bad_paths_and_phases_explain_themselves() {
    check(
        "legit.latncy.p99",
        None,
        Err("unknown metric `legit.latncy.p99`; did you mean `legit.latency.p99`?"),
    );
    check(
        "legit.rejected.rate_limit",
        None,
        Err(
            "unknown metric `legit.rejected.rate_limit`; did you mean `legit.rejected.rate_limited`?",
        ),
    );
    check("zzz", None, Err("unknown metric `zzz`"));
    check(
        "legit.offered",
        Some("p1"),
        Err("unknown phase `p1`; did you mean `p0`?"),
    );
    check(
        "attack.stuffing.latency.p99",
        None,
        Err("metric `attack.stuffing.latency.p99` has no data"),
    );
    check(
        "attack.stuffing.success_rate",
        Some("p0"),
        Err("metric `attack.stuffing.success_rate` has no data during phase `p0`"),
    );
}

#[test]
fn a_bare_name_that_means_two_things_is_ambiguous() {
    let mut n = Names::new();
    n.add_counter("x").unwrap();
    n.add_gauge("x").unwrap();
    let m = Recorder::new(RecorderConfig::default(), n)
        .unwrap()
        .finish(at(0), &mut NullSink)
        .unwrap();
    let e = m.lookup("x", None).unwrap_err();
    assert_eq!(
        e,
        LookupError::Ambiguous {
            path: "x".into(),
            meanings: vec!["counters.x".into(), "gauges.x.last".into()]
        }
    );
    assert_eq!(m.lookup("counters.x", None), Ok(0.0));
}

#[test]
fn registration_rejects_empty_duplicate_and_inverted_names() {
    let mut n = Names::new();
    assert_eq!(n.add_class(""), Err(NamesError::Empty { kind: "class" }));
    n.add_class("legit").unwrap();
    assert!(matches!(
        n.add_class("legit"),
        Err(NamesError::Duplicate { .. })
    ));
    // Different kinds may share a name.
    n.add_counter("legit").unwrap();
    assert!(matches!(
        n.add_phase("p", at(5), at(5)),
        Err(NamesError::EmptyPhase { .. })
    ));
    n.add_phase("p", at(5), at(6)).unwrap();
    assert!(matches!(
        n.add_phase("p", at(7), at(8)),
        Err(NamesError::Duplicate { kind: "phase", .. })
    ));
    assert_eq!(n.class("legit"), Some(ClassId(0)));
    assert_eq!(n.phase("p"), Some(PhaseId(0)));
    assert_eq!(n.reason("legit"), None);
}

#[test]
fn config_rejects_a_zero_interval_and_too_few_plot_points() {
    let bad = |c: RecorderConfig| Recorder::new(c, Names::new()).unwrap_err();
    assert_eq!(
        bad(RecorderConfig {
            interval: Duration::ZERO,
            ..Default::default()
        }),
        ConfigError::ZeroInterval
    );
    assert!(matches!(
        bad(RecorderConfig {
            plot_points_max: 1,
            ..Default::default()
        }),
        ConfigError::TooFewPoints {
            field: "plot_points_max",
            ..
        }
    ));
    let c: RecorderConfig = serde_json::from_str(r#"{"interval":"250ms"}"#).unwrap();
    assert_eq!(c.interval, Duration::from_millis(250));
    assert_eq!(c.plot_points_max, 2048);
    assert!(serde_json::from_str::<RecorderConfig>(r#"{"intervall":"1s"}"#).is_err());
}

#[test]
fn csv_has_a_quoted_header_exact_times_and_empty_fields_for_no_data() {
    let mut n = Names::new();
    let c = n.add_class("legit,\"eu\"").unwrap();
    let mut rec = Recorder::new(
        RecorderConfig {
            interval: Duration::from_millis(1500),
            ..Default::default()
        },
        n,
    )
    .unwrap();
    let mut csv = CsvSink::new(Vec::new());
    rec.offered(at(1), c);
    rec.completed(at(2), c, Duration::from_micros(200));
    rec.close_interval(at(1_500_000_000), &mut csv).unwrap();
    rec.finish(at(2_000_000_001), &mut csv).unwrap();
    let text = String::from_utf8(csv.into_inner().unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "start_s,end_s,\"legit,\"\"eu\"\".offered\",\"legit,\"\"eu\"\".admitted\",\"legit,\"\"eu\"\".completed\",\"legit,\"\"eu\"\".rejected\",\"legit,\"\"eu\"\".latency.p50\",\"legit,\"\"eu\"\".latency.p90\",\"legit,\"\"eu\"\".latency.p99\",\"legit,\"\"eu\"\".latency.p99.9\",\"legit,\"\"eu\"\".latency.max\",\"legit,\"\"eu\"\".latency.mean\""
    );
    assert_eq!(lines[1], "0,1.5,1,0,1,0,0.2,0.2,0.2,0.2,0.2,0.2");
    assert_eq!(lines[2], "1.5,2.000000001,0,0,0,0,,,,,,");
}

#[test]
fn boxed_and_borrowed_sinks_forward_rows() {
    let mut rec = Recorder::new(RecorderConfig::default(), names_with_phases(&[])).unwrap();
    let mut inner = VecSink::default();
    {
        let mut boxed: Box<dyn RowSink<Error = std::convert::Infallible> + '_> =
            Box::new(&mut inner);
        rec.close_interval(at(1_000_000_000), &mut boxed).unwrap();
    }
    assert_eq!(inner.rows.len(), 1);
    assert_eq!(inner.columns, rec.columns());
}
