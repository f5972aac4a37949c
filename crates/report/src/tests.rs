//! Tests: escaping, determinism, plots present, downsampling, edge cases,
//! the verdict, and a headless-browser check when Chromium is installed.

use proptest::prelude::*;
use rampart_metrics::{Names, NullSink, Recorder, RecorderConfig, RunMetrics};
use rampart_time::{Duration, Instant};

use crate::downsample::min_max_per_pixel;
use crate::*;

mod browser;

fn at(s: u64) -> Instant {
    Instant::from_nanos(Duration::from_secs(s).as_nanos())
}

/// A tiny deterministic generator, so fixtures need no RNG crate.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// A run shaped like the simulator's: legit plus one attack, reasons,
/// counters, the world's gauges, two phases, and policy versions rolling
/// out half-way. `seconds` intervals of one second.
pub(crate) fn fixture(seconds: u64) -> RunMetrics {
    let mut names = Names::new();
    let legit = names.add_class("legit").unwrap();
    let attack = names.add_class("attack.stuffing").unwrap();
    let limited = names.add_reason("rate_limited").unwrap();
    let shed = names.add_reason("shed").unwrap();
    let _never = names.add_reason("abuse_blocked").unwrap();
    let takeovers = names.add_counter("attack.stuffing.takeovers").unwrap();
    let blocked = names.add_counter("attack.stuffing.blocked").unwrap();
    let stale = names.add_counter("stale_policy.requests").unwrap();
    let gauges: Vec<_> = [
        "instances.booting",
        "instances.in_service",
        "instances.draining",
        "instances.terminated",
        "desired_capacity",
        "utilisation",
        "queue_len.sum",
        "queue_len.max",
        "backend.utilisation",
    ]
    .iter()
    .map(|g| names.add_gauge(g).unwrap())
    .collect();
    if seconds >= 4 {
        names
            .add_phase("surge", at(seconds / 4), at(seconds / 2))
            .unwrap();
        names
            .add_phase("attack", at(seconds / 2), at(seconds * 3 / 4))
            .unwrap();
    }
    let mut rec = Recorder::new(RecorderConfig::default(), names).unwrap();
    let mut g = Lcg(7);
    for s in 0..seconds {
        let now = at(s) + Duration::from_millis(500);
        let surge = s >= seconds / 4 && s < seconds / 2;
        let n = 20 + g.next() % 10 + if surge { 30 } else { 0 };
        for _ in 0..n {
            rec.offered(now, legit);
            if g.next().is_multiple_of(50) {
                rec.rejected(now, legit, shed);
            } else {
                rec.admitted(now, legit);
                rec.completed(now, legit, Duration::from_millis(10 + g.next() % 40));
            }
        }
        // One latency spike a third of the way in.
        if s == seconds / 3 {
            rec.completed(now, legit, Duration::from_millis(5_000));
        }
        if s >= seconds / 2 && s < seconds * 3 / 4 {
            for _ in 0..40 {
                rec.offered(now, attack);
                if g.next().is_multiple_of(10) {
                    rec.admitted(now, attack);
                    rec.completed(now, attack, Duration::from_millis(15));
                } else {
                    rec.rejected(now, attack, limited);
                    rec.count(now, blocked, 1);
                }
            }
            if s % 17 == 0 {
                rec.count(now, takeovers, 1);
            }
            rec.count(now, stale, g.next() % 3);
        }
        let in_service = 4.0 + if surge { 3.0 } else { 0.0 };
        let values = [
            1.0,
            in_service,
            0.0,
            (s / 100) as f64,
            in_service,
            0.6,
            3.0,
            2.0,
            0.4,
        ];
        for (id, v) in gauges.iter().zip(values) {
            rec.set_gauge(*id, v);
        }
        let v2 = s >= seconds / 2;
        let versions: Vec<(u32, u32)> = (0..in_service as u32)
            .map(|i| (i, if v2 && i % 2 == 0 { 2 } else { 1 }))
            .collect();
        rec.set_instance_versions(&versions);
        let Ok(()) = rec.close_interval(at(s + 1), &mut NullSink);
    }
    let Ok(m) = rec.finish(at(seconds), &mut NullSink);
    m
}

pub(crate) fn annotations(seconds: u64) -> Vec<Annotation> {
    let mut v = vec![
        Annotation {
            at: Duration::from_secs(seconds / 4),
            label: "surge start".into(),
            kind: AnnotationKind::Surge,
        },
        Annotation {
            at: Duration::from_secs(seconds / 2),
            label: "attack start: stuffing".into(),
            kind: AnnotationKind::Attack,
        },
    ];
    for i in 0..40 {
        v.push(Annotation {
            at: Duration::from_secs(seconds * i / 40),
            label: format!("scale {} -> {}: cpu high", 4 + i % 3, 5 + i % 3),
            kind: AnnotationKind::Scale,
        });
    }
    v
}

pub(crate) fn report<'a>(
    scenario: &'a str,
    m: &'a RunMetrics,
    annotations: &'a [Annotation],
    assertions: &'a [AssertionResult],
) -> RunReport<'a> {
    RunReport {
        scenario,
        seed: 42,
        live: None,
        command: "rampart run scenarios/x.toml --seed 42",
        metrics: m,
        annotations,
        annotations_dropped: 0,
        cost: Cost {
            instance_hours: 4.5,
            money: 1.35,
        },
        policy_hash: "0badc0de",
        policy_versions: &[],
        config_toml: "[run]\nname = \"x\"\nseed = 42\n",
        assertions,
    }
}

/// A comparison variant without a link to its own report.
pub(crate) fn var<'a>(name: &'a str, report: &'a RunReport<'a>) -> Variant<'a> {
    Variant {
        name,
        href: None,
        report,
    }
}

fn pass(expr: &str, measured: f64) -> AssertionResult {
    AssertionResult {
        expr: expr.into(),
        phase: None,
        measured: Some(measured),
        measured_text: format!("{measured}"),
        threshold: "300ms".into(),
        passed: true,
    }
}

/// Whether the page has a chart titled `t`.
fn has_title(html: &str, t: &str) -> bool {
    html.contains(&format!("<div class=\"chart-title\">{t}</div>"))
}

/// Whether an SVG `<text>` holds exactly `t` (plotters puts the text on a
/// line of its own).
fn has_text(html: &str, t: &str) -> bool {
    html.contains(&format!(">\n{t}\n</text>"))
}

fn svg_count(html: &str) -> usize {
    html.matches("<svg").count()
}

const EVIL: &str = "<script>alert(1)</script>";

#[test]
fn every_user_string_is_escaped_so_a_script_named_scenario_cannot_run() {
    // Every kind of name the recorder accepts, plus every report field.
    let mut names = Names::new();
    let c = names.add_class(EVIL).unwrap();
    let a = names.add_class(&format!("attack.{EVIL}")).unwrap();
    let r = names.add_reason(EVIL).unwrap();
    let k = names.add_counter(&format!("stale.{EVIL}")).unwrap();
    let g = names.add_gauge(&format!("instances.{EVIL}")).unwrap();
    names.add_phase(EVIL, at(1), at(3)).unwrap();
    let mut rec = Recorder::new(RecorderConfig::default(), names).unwrap();
    for s in 0..5 {
        rec.offered(at(s), c);
        rec.completed(at(s), c, Duration::from_millis(5));
        rec.offered(at(s), a);
        rec.rejected(at(s), a, r);
        rec.count(at(s), k, 1);
        rec.set_gauge(g, 2.0);
        rec.set_instance_versions(&[(1, 1)]);
        let Ok(()) = rec.close_interval(at(s + 1), &mut NullSink);
    }
    let Ok(m) = rec.finish(at(5), &mut NullSink);
    let ann = [Annotation {
        at: Duration::from_secs(2),
        label: EVIL.into(),
        kind: AnnotationKind::Attack,
    }];
    let asserts = [AssertionResult {
        expr: EVIL.into(),
        phase: Some(EVIL.into()),
        measured: None,
        measured_text: EVIL.into(),
        threshold: EVIL.into(),
        passed: false,
    }];
    let mut rep = report(EVIL, &m, &ann, &asserts);
    rep.command = EVIL;
    rep.policy_hash = EVIL;
    rep.config_toml = "name = \"</pre><script>alert(1)</script>\"";
    let run = render_run(&rep);
    let cmp = render_compare(&[
        Variant {
            name: EVIL,
            href: Some("javascript:alert(1)"),
            report: &rep,
        },
        var("b", &rep),
    ]);
    let sweep = render_sweep(
        EVIL,
        &[SweepRow {
            label: EVIL.into(),
            params: vec![(EVIL.into(), EVIL.into())],
            cost: 1.0,
            legit_failure_rate: 0.1,
            attacker_success: 0.2,
            href: Some("javascript:alert(1)".into()),
            passed: false,
            failed: vec![EVIL.into()],
            has_attackers: true,
        }],
    );
    for (page, scripts) in [(&run, 0), (&cmp, 0), (&sweep, 1)] {
        assert!(!page.contains("<script>alert"), "raw script in page");
        assert!(
            !page.to_lowercase().contains("javascript:alert(1)\""),
            "javascript: link survived"
        );
        assert_eq!(
            page.matches("<script").count(),
            scripts,
            "only our own sort script may appear"
        );
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "the name is shown, escaped"
        );
        // Escaped once, not twice (plotters escapes SVG text itself).
        assert!(!page.contains("&amp;lt;script"), "double-escaped text");
    }
    assert!(run.contains("<svg"), "the run still has its plots");
}

#[test]
fn html_escape_leaves_no_markup_characters_and_round_trips() {
    proptest!(|(text in any::<String>())| {
        let e = crate::escape::html(&text);
        prop_assert!(!e.contains(['<', '>', '"', '\'']));
        let back = e
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&");
        let expected: String = text
            .chars()
            .map(|c| if (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}' { '\u{FFFD}' } else { c })
            .collect();
        prop_assert_eq!(back, expected);
    });
}

#[test]
fn svg_labels_have_no_control_characters_and_are_bounded() {
    proptest!(|(text in any::<String>(), max in 1usize..50)| {
        let l = crate::escape::svg_label(&text, max);
        let clean = l.chars().all(|c| c >= ' ' && c != '\x7f');
        prop_assert!(clean, "control character in {:?}", l);
        prop_assert!(l.chars().count() <= max + 1);
    });
}

#[test]
fn the_same_run_renders_to_the_same_bytes_even_after_a_json_round_trip() {
    let m = fixture(600);
    let a = annotations(600);
    let asserts = [pass("legit.latency.p99 <= 300ms", 42.0)];
    let one = render_run(&report("det", &m, &a, &asserts));
    let two = render_run(&report("det", &m, &a, &asserts));
    assert_eq!(one, two);
    // metrics.json read back gives the same page: the report depends on
    // nothing but the data.
    let back: RunMetrics = serde_json::from_str(&m.to_json()).unwrap();
    assert_eq!(render_run(&report("det", &back, &a, &asserts)), one);
    let r = report("det", &m, &a, &asserts);
    assert_eq!(
        render_compare(&[var("a", &r), var("b", &r)]),
        render_compare(&[var("a", &r), var("b", &r)])
    );
}

#[test]
fn a_run_page_has_every_plot_and_each_svg_is_closed() {
    let m = fixture(3600);
    let a = annotations(3600);
    let html = render_run(&report("plots", &m, &a, &[]));
    let titles = [
        "legit: offered, admitted, completed",
        "Rejections by reason (all classes)",
        "legit: latency percentiles per interval",
        "Instances by lifecycle state, and desired capacity",
        "Utilisation",
        "Queue lengths",
        "Instances launched, terminated and billed, so far",
        "attack.stuffing: attempts and what got through",
        "attack.stuffing: what it achieved, so far",
        "Requests served under a stale policy",
        "Policy version per instance",
    ];
    for title in titles {
        assert!(has_title(&html, title), "missing plot {title}");
    }
    // One SVG per title, each closed; no chart of nothing.
    assert_eq!(svg_count(&html), titles.len());
    assert_eq!(html.matches("</svg>").count(), titles.len());
    assert!(
        !html.contains("CPU it cost"),
        "no CPU counters, no CPU chart"
    );
    assert!(html.contains("No revoked token") || !html.contains("revoked."));
    // Counts and shares of one thing have different names.
    assert!(html.contains("<code>attack.stuffing.admitted</code>"));
    assert!(html.contains("<code>attack.stuffing.admitted_rate</code>"));
    // Each key number appears once in the tables.
    assert_eq!(
        html.matches("<code>attack.stuffing.takeovers</code>")
            .count(),
        1
    );
    assert!(!html.contains("could not draw"));
    // Reasons that never occurred are not in the stacked legend.
    assert!(!html.contains("</i>abuse_blocked</span>"));
    assert!(html.contains("</i>rate_limited</span>"));
    // Annotations reach the plots (as lines on every axis, labels where they fit).
    assert!(has_text(&html, "surge start"));
    assert!(
        html.contains("<code>stale_policy.requests</code>"),
        "stale-policy exposure shown"
    );
    assert!(html.contains("no assertions declared"));
    // The configuration and the reproduce command close the page.
    let cfg = html.find("class=\"config\"").unwrap();
    let cmd = html.find("class=\"cmd\"").unwrap();
    assert!(cmd < cfg && cfg > html.rfind("<svg").unwrap());
    assert!(html.contains("rampart run scenarios/x.toml --seed 42"));
}

#[test]
fn a_report_with_a_failing_assertion_leads_with_fail() {
    let m = fixture(60);
    let asserts = [
        pass("legit.success_rate >= 99%", 0.995),
        AssertionResult {
            expr: "legit.latency.p99 <= 30ms".into(),
            phase: Some("surge".into()),
            measured: Some(48.5),
            measured_text: "48.5ms".into(),
            threshold: "30ms".into(),
            passed: false,
        },
        pass("attack.stuffing.success_rate <= 20%", 0.1),
    ];
    let html = render_run(&report("fail", &m, &[], &asserts));
    let verdict = html
        .find("FAIL: 1 of 3 assertions failed")
        .expect("verdict line");
    let keys = html.find("<h2>Key numbers</h2>").unwrap();
    assert!(verdict < keys, "verdict comes before the key numbers");
    let failed = html.find("legit.latency.p99 &lt;= 30ms").unwrap();
    let passed = html.find("legit.success_rate &gt;= 99%").unwrap();
    assert!(failed < passed, "failures are listed first");
    assert!(
        html[failed..].find("48.5ms").unwrap() < 400,
        "measured value, in the threshold's unit, next to the failure"
    );
    let all_pass = render_run(&report("ok", &m, &[], &asserts[..1]));
    assert!(all_pass.contains("PASS: the one assertion holds"));
    assert!(!all_pass.contains("FAIL"));
}

#[test]
fn empty_and_degenerate_runs_render_without_panicking() {
    // Nothing registered, nothing recorded, no time passed.
    let rec = Recorder::new(RecorderConfig::default(), Names::new()).unwrap();
    let Ok(empty) = rec.finish(Instant::ZERO, &mut NullSink);
    let html = render_run(&report("empty", &empty, &[], &[]));
    assert!(html.contains("no assertions declared"));
    assert!(html.ends_with("</html>\n"));
    // Classes registered but no events; a phase of zero length.
    let mut names = Names::new();
    names.add_class("legit").unwrap();
    names.add_gauge("instances.in_service").unwrap();
    let rec = Recorder::new(RecorderConfig::default(), names).unwrap();
    let Ok(idle) = rec.finish(at(3), &mut NullSink);
    let html = render_run(&report("idle", &idle, &annotations(3), &[]));
    assert!(!html.contains("could not draw"), "{html}");
    // A zero interval (impossible from the recorder, possible in a hand-edited
    // metrics.json) falls back to per-interval counts instead of dividing by zero.
    let mut zero = fixture(30);
    zero.interval = Duration::ZERO;
    let html = render_run(&report("zero", &zero, &[], &[]));
    assert!(html.contains("requests per interval"));
    assert!(
        !html.contains("NaN") && !html.contains("inf"),
        "no non-finite numbers leak"
    );
    // Annotations beyond the run's end and at time zero are harmless.
    let far = [Annotation {
        at: Duration::from_hours(99),
        label: "late".into(),
        kind: AnnotationKind::Fault,
    }];
    let _ = render_run(&report("far", &zero, &far, &[]));
    let _ = render_compare(&[]);
    let _ = render_compare(&[var("only", &report("e", &empty, &[], &[]))]);
    let _ = render_sweep("s", &[]);
    let nan = SweepRow {
        label: "nan".into(),
        params: vec![],
        cost: f64::NAN,
        legit_failure_rate: f64::INFINITY,
        attacker_success: f64::NAN,
        href: None,
        passed: true,
        failed: vec![],
        has_attackers: true,
    };
    assert!(!render_sweep("s", &[nan]).contains("could not draw"));
}

#[test]
fn a_one_interval_spike_survives_downsampling_where_striding_would_drop_it() {
    let n = 3600;
    let ends: Vec<f64> = (1..=n).map(f64::from).collect();
    let mut max = vec![Some(10.0); n as usize];
    max[1234] = Some(5_000.0);
    let spans = min_max_per_pixel(&ends, &max, &max, &max, (0.0, 3600.0), 800);
    assert!(spans.len() <= 800);
    let top = spans.iter().flatten().map(|s| s.max).fold(0.0, f64::max);
    assert_eq!(top, 5_000.0);
    // Striding to 800 points (every 4.5th) would have missed index 1234.
    let stride: Vec<f64> = (0..800)
        .map(|i| max[i * n as usize / 800].unwrap())
        .collect();
    assert!(
        stride.iter().all(|v| *v == 10.0),
        "the oracle for what striding loses"
    );
}

fn buckets() -> impl Strategy<Value = (Vec<Option<f64>>, Vec<Option<f64>>)> {
    proptest::collection::vec(
        proptest::option::weighted(0.9, (-1e6f64..1e6, 0f64..1e6)),
        0..3000,
    )
    .prop_map(|v| {
        let lo = v.iter().map(|b| b.map(|(a, _)| a)).collect();
        let hi = v.iter().map(|b| b.map(|(a, d)| a + d)).collect();
        (lo, hi)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)))]

    #[test]
    fn downsampling_keeps_the_global_max_and_min((lo, hi) in buckets(), pixels in 1usize..1200) {
        let n = lo.len();
        let ends: Vec<f64> = (1..=n).map(|i| i as f64 * 2.0).collect();
        let mean: Vec<Option<f64>> = lo.iter().zip(&hi).map(|(a, b)| a.zip(*b).map(|(a, b)| (a + b) / 2.0)).collect();
        let spans = min_max_per_pixel(&ends, &lo, &hi, &mean, (0.0, n as f64 * 2.0), pixels);
        prop_assert!(spans.len() <= n.max(1).min(pixels.max(n.min(pixels))));
        prop_assert!(spans.len() <= pixels.max(1) || spans.len() == n);
        let want_max = hi.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
        let want_min = lo.iter().flatten().copied().fold(f64::INFINITY, f64::min);
        let got_max = spans.iter().flatten().map(|s| s.max).fold(f64::NEG_INFINITY, f64::max);
        let got_min = spans.iter().flatten().map(|s| s.min).fold(f64::INFINITY, f64::min);
        prop_assert_eq!(got_max, want_max);
        prop_assert_eq!(got_min, want_min);
        for s in spans.iter().flatten() {
            prop_assert!(s.min <= s.mean && s.mean <= s.max);
        }
        // Times stay in order, so lines never run backwards.
        let ts: Vec<f64> = spans.iter().flatten().map(|s| s.t_s).collect();
        prop_assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn the_pareto_front_is_exactly_the_undominated_rows(
        pts in proptest::collection::vec((0u8..6, 0u8..6, 0u8..6), 0..30)
    ) {
        let rows: Vec<SweepRow> = pts.iter().enumerate().map(|(i, (c, f, a))| SweepRow {
            label: format!("v{i}"),
            params: vec![("k".into(), i.to_string())],
            cost: f64::from(*c),
            legit_failure_rate: f64::from(*f) / 10.0,
            attacker_success: f64::from(*a) / 10.0,
            href: None,
            passed: true,
            failed: vec![],
            has_attackers: true,
        }).collect();
        let front = pareto_front(&rows);
        // Oracle: on integer keys, dominance is a plain tuple comparison.
        for (i, p) in pts.iter().enumerate() {
            let dominated = pts.iter().any(|q| q.0 <= p.0 && q.1 <= p.1 && q.2 <= p.2 && q != p);
            prop_assert_eq!(front.contains(&i), !dominated, "row {}", i);
        }
    }
}

#[test]
fn compare_shows_deltas_against_the_first_variant_and_overlays() {
    let m1 = fixture(120);
    let mut m2 = fixture(120);
    if let Some(l) = m2.totals.classes.get_mut("legit") {
        l.success_rate = Some(0.5);
    }
    let a = annotations(120);
    let r1 = report("base", &m1, &a, &[]);
    let mut r2 = report("cand", &m2, &a, &[]);
    r2.cost.instance_hours = 9.0;
    let html = render_compare(&[var("base", &r1), var("candidate", &r2)]);
    assert!(html.contains("Δ vs base"));
    // instance-hours 4.5 -> 9: +4.5 (+100%), worse.
    assert!(
        html.contains("<span class=\"bad\">+4.5 (+100%)</span>"),
        "{}",
        &html[..2000]
    );
    assert!(
        html.contains("<span class=\"muted\">0</span>"),
        "unchanged numbers read 0"
    );
    // Three overlays, and each variant's rejections by reason.
    assert_eq!(svg_count(&html), 5);
    assert!(has_title(&html, "legit latency p99"));
    assert!(has_title(&html, "instances in service"));
}

#[test]
fn sweep_table_is_complete_in_cost_order_without_script() {
    let rows: Vec<SweepRow> = [
        (3.0, 0.01, 0.0),
        (1.0, 0.2, 0.5),
        (2.0, 0.05, 0.1),
        (4.0, 0.3, 0.6),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(cost, f, a))| SweepRow {
        label: format!("variant-{i}"),
        params: vec![("limit".into(), format!("{}/s", 100 * (i + 1)))],
        cost,
        legit_failure_rate: f,
        attacker_success: a,
        href: Some(format!("v{i}/index.html")),
        passed: true,
        failed: vec![],
        has_attackers: true,
    })
    .collect();
    let html = render_sweep("s", &rows);
    let pos: Vec<usize> = [1, 2, 0, 3]
        .iter()
        .map(|i| html.find(&format!(">variant-{i}</a>")).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "cost order");
    assert_eq!(
        pareto_front(&rows),
        vec![0, 1, 2],
        "variant 3 is dominated by 1"
    );
    assert!(html.contains("class=\"sortable sweep\""));
    assert!(html.contains("<a href=\"v0/index.html\">"));
    assert_eq!(svg_count(&html), 1);
}

#[test]
#[ignore = "writes a sweep page to $REPORT_DUMP_DIR for a look; not a check"]
fn dump_sweep_page_for_a_look() {
    let dir = std::env::var("REPORT_DUMP_DIR")
        .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let rows: Vec<SweepRow> = (0..24)
        .map(|i| {
            let f = f64::from(i);
            SweepRow {
                label: format!("v{i}"),
                params: vec![
                    ("limit".into(), format!("{}/s", 50 * (i + 1))),
                    ("pool".into(), format!("{}", 2 + i % 5)),
                ],
                cost: 1.0 + (f * 0.37) % 3.0,
                legit_failure_rate: 0.05 / (1.0 + f * 0.3) + (f * 0.013) % 0.02,
                attacker_success: (f * 0.041) % 0.5,
                href: Some(format!("v{i}/index.html")),
                passed: true,
                failed: vec![],
                has_attackers: true,
            }
        })
        .collect();
    std::fs::write(format!("{dir}/sweep.html"), render_sweep("s", &rows)).unwrap();
}

/// A run of `seconds` one-second intervals that registers the reasons
/// `rate_limited` and `shed`, in that order, and rejects only for those in
/// `rejecting`.
fn rejecting(seconds: u64, rejecting: &[&str]) -> RunMetrics {
    let mut names = Names::new();
    let legit = names.add_class("legit").unwrap();
    let reasons: Vec<_> = ["rate_limited", "shed"]
        .iter()
        .map(|r| (*r, names.add_reason(r).unwrap()))
        .collect();
    names.add_gauge("instances.in_service").unwrap();
    let mut rec = Recorder::new(RecorderConfig::default(), names).unwrap();
    for s in 0..seconds {
        for _ in 0..5 {
            rec.offered(at(s), legit);
            rec.admitted(at(s), legit);
            rec.completed(at(s), legit, Duration::from_millis(10));
        }
        for (name, id) in &reasons {
            if rejecting.contains(name) {
                rec.offered(at(s), legit);
                rec.rejected(at(s), legit, *id);
            }
        }
        let Ok(()) = rec.close_interval(at(s + 1), &mut NullSink);
    }
    let Ok(m) = rec.finish(at(seconds), &mut NullSink);
    m
}

#[test]
fn compare_links_each_variant_to_its_own_report_with_relative_links_only() {
    let m = fixture(60);
    let r = report("x", &m, &[], &[]);
    let variant = |name, href| Variant {
        name,
        href: Some(href),
        report: &r,
    };
    let html = render_compare(&[
        variant("base", "base/index.html"),
        variant("local", "local/index.html"),
        variant("far", "https://example.com/far/index.html"),
        variant("proto", "//example.com/index.html"),
    ]);
    let link = |v: &str| format!("<a href=\"{v}/index.html\">{v}</a>");
    // Legend, verdict heading, key-number column: three links per variant.
    assert_eq!(html.matches(&link("base")).count(), 3, "base");
    assert_eq!(html.matches(&link("local")).count(), 3, "local");
    // Absolute and protocol-relative links are dropped, the names stay.
    assert!(!html.contains("href=\"https:"), "absolute link kept");
    assert!(!html.contains("href=\"//"), "protocol-relative link kept");
    assert!(html.contains("<h3>far</h3>") && html.contains("<h3>proto</h3>"));
    let hrefs: Vec<&str> = html.split("href=\"").skip(1).collect();
    assert_eq!(hrefs.len(), 6, "only the two relative variants link");
    // Without any link, the page does not promise one.
    let plain = render_compare(&[var("a", &r), var("b", &r)]);
    assert!(!plain.contains("<a href"));
    assert!(!plain.contains("links to its own run report"));
}

#[test]
fn compare_draws_each_variants_rejections_by_reason_with_one_colour_per_reason() {
    // `shed` alone in the first variant, both reasons in the second.
    let a = rejecting(30, &["shed"]);
    let b = rejecting(30, &["rate_limited", "shed"]);
    let none = rejecting(30, &[]);
    let (ra, rb, rn) = (
        report("a", &a, &[], &[]),
        report("b", &b, &[], &[]),
        report("n", &none, &[], &[]),
    );
    let html = render_compare(&[var("a", &ra), var("b", &rb), var("n", &rn)]);
    assert!(has_title(&html, "a: rejections by reason (all classes)"));
    assert!(has_title(&html, "b: rejections by reason (all classes)"));
    assert!(!has_title(&html, "n: rejections by reason (all classes)"));
    assert!(html.contains("<p class=\"muted\">n: no request was rejected.</p>"));
    assert_eq!(
        svg_count(&html),
        3 + 2,
        "three overlays, two rejection charts"
    );
    // A reason's colour is its place among the reasons any variant saw,
    // so `shed` is the same colour in both charts although `b` registered
    // `rate_limited` first.
    let vs = [var("a", &ra), var("b", &rb), var("n", &rn)];
    let reasons = crate::compare::occurred_reasons(&vs);
    assert_eq!(reasons, ["shed", "rate_limited"]);
    let colour = |m: &RunMetrics, reason: &str| {
        crate::compare::reason_lines(m, &reasons)
            .into_iter()
            .find(|l| l.label == reason)
            .map(|l| l.color)
    };
    assert_eq!(colour(&a, "shed"), colour(&b, "shed"));
    assert_ne!(colour(&b, "shed"), colour(&b, "rate_limited"));
    assert_eq!(colour(&a, "rate_limited"), None, "a never rate-limited");
    // A reason no variant saw is left out of every chart.
    let m = fixture(60);
    let r = report("x", &m, &[], &[]);
    let html = render_compare(&[var("x", &r), var("y", &r)]);
    // Legends are HTML: one entry per reason that occurred.
    assert!(html.contains("</i>shed</span>") && html.contains("</i>rate_limited</span>"));
    assert!(!html.contains("abuse_blocked"), "never occurred");
}

#[test]
fn compare_without_any_rejection_says_so_in_one_line_instead_of_a_chart() {
    let m = rejecting(30, &[]);
    let r = report("x", &m, &[], &[]);
    let html = render_compare(&[var("a", &r), var("b", &r)]);
    assert_eq!(
        html.matches("No request was rejected in any variant.")
            .count(),
        1
    );
    assert!(!html.contains("rejections by reason (all classes)"));
    assert_eq!(svg_count(&html), 3, "the overlays only");
}

fn sweep_row(label: &str, cost: f64, fail: f64, att: f64) -> SweepRow {
    SweepRow {
        label: label.into(),
        params: vec![("limit".into(), label.into())],
        cost,
        legit_failure_rate: fail,
        attacker_success: att,
        href: None,
        passed: true,
        failed: vec![],
        has_attackers: true,
    }
}

#[test]
fn sweep_title_and_heading_name_the_scenario() {
    let html = render_sweep("local <vs> global", &[sweep_row("a", 1.0, 0.1, 0.0)]);
    assert!(html.contains("<title>Rampart sweep: local &lt;vs&gt; global</title>"));
    assert!(html.contains("<h1>Rampart sweep: local &lt;vs&gt; global</h1>"));
}

#[test]
fn sweep_table_shows_pass_or_fail_and_the_failed_assertions() {
    let mut bad = sweep_row("bad", 1.0, 0.2, 0.0);
    bad.passed = false;
    bad.failed = (1..=4)
        .map(|k| format!("legit.latency.p99 <= {k}0ms"))
        .collect();
    let html = render_sweep("s", &[sweep_row("good", 2.0, 0.0, 0.0), bad]);
    assert!(html.contains("<th>verdict</th>"));
    assert_eq!(
        html.matches("<span class=\"badge pass\">PASS</span>")
            .count(),
        1
    );
    assert_eq!(
        html.matches("<span class=\"badge fail\">FAIL</span>")
            .count(),
        1
    );
    assert!(html.contains("1 pass · 1 fail"));
    // The first three in small text, the rest counted; all in the tooltip.
    let cell = html.split("badge fail").nth(1).unwrap();
    let cell = &cell[..cell.find("</td>").unwrap()];
    assert!(
        cell.contains("legit.latency.p99 &lt;= 30ms<br>and 1 more"),
        "{cell}"
    );
    assert!(!cell.contains("40ms"), "the fourth is counted, not shown");
    let title = "title=\"legit.latency.p99 &lt;= 10ms\nlegit.latency.p99 &lt;= 20ms\n\
                 legit.latency.p99 &lt;= 30ms\nlegit.latency.p99 &lt;= 40ms\"";
    assert!(
        html.contains(title),
        "every failed assertion in the tooltip"
    );
}

#[test]
fn coincident_sweep_points_are_one_marker_with_a_count_and_every_label() {
    // Three points with the same results (a limit that never binds), and
    // one apart.
    let rows = [
        sweep_row("limit-100", 1.0, 0.05, 0.1),
        sweep_row("limit-200", 1.0, 0.05, 0.3),
        sweep_row("limit-400", 1.0, 0.05, 0.2),
        sweep_row("limit-50", 0.5, 0.2, 0.4),
    ];
    let html = render_sweep("s", &rows);
    let item = html
        .split("<li>")
        .nth(1)
        .expect("a list of coincident points");
    let item = &item[..item.find("</li>").unwrap()];
    assert!(
        item.starts_with("×3 at cost 1, legit failure 5.00%"),
        "{item}"
    );
    for l in ["limit-100", "limit-200", "limit-400"] {
        assert!(item.contains(l), "{l} is listed");
    }
    assert!(!item.contains("limit-50"));
    assert_eq!(html.matches("<li>").count(), 1, "one marker holds several");
    // The marker shows the count; the front label names them all.
    assert!(has_text(&html, "3"));
    assert!(html.contains("×3 limit-100, limit-200, limit-400"));
    // No coincidence, no list.
    let apart = render_sweep("s", &rows[2..]);
    assert!(!apart.contains("<ul class=\"coincident\">"));
}

#[test]
fn sweep_point_labels_stay_inside_the_chart() {
    // The costliest and the most failing points are on the front (each is
    // best on attacker success), so both get labels by the plot's edges.
    let long = "a-long-label-for-the-right-edge";
    let rows = [
        sweep_row("cheap", 1.0, 0.01, 0.5),
        sweep_row(long, 9.0, 0.005, 0.0),
        sweep_row("top", 0.5, 0.5, 0.4),
    ];
    let html = render_sweep("s", &rows);
    for label in [long, "top"] {
        let end = html
            .find(&format!(">\n{label}\n</text>"))
            .unwrap_or_else(|| panic!("{label} is drawn"));
        let open = html[..end].rfind("<text x=\"").unwrap() + 9;
        let num = |s: &str| -> i32 { s[..s.find('"').unwrap()].parse().unwrap() };
        let x = num(&html[open..]);
        let y = num(&html[html[open..end].find("y=\"").unwrap() + open + 3..]);
        let width = 6 * label.chars().count() as i32;
        assert!(x >= 0 && x + width <= 960, "{label} at x {x} fits");
        assert!(y >= 0 && y + 13 <= 420, "{label} at y {y} fits");
    }
}

#[test]
fn sweep_table_scrolls_in_its_own_box_and_breaks_long_parameters() {
    let mut r = sweep_row("a", 1.0, 0.1, 0.0);
    r.params = vec![(
        "scaling.controller.max_replicas".into(),
        "{ kind = \"fixed\", rate = \"10k/s\" }".into(),
    )];
    let html = render_sweep("s", &[r]);
    assert!(html.contains("<div class=\"scroll\"><table class=\"sortable sweep\">"));
    assert!(html.contains("<th>scaling.<wbr>controller.<wbr>max_<wbr>replicas</th>"));
    // The sort key stays the plain value.
    assert!(html.contains("data-v=\"{ kind = &quot;fixed&quot;, rate = &quot;10k/s&quot; }\""));
}

#[test]
fn a_sweep_without_attackers_has_no_attacker_legend_column_or_colours() {
    let rows: Vec<SweepRow> = (0..4)
        .map(|i| SweepRow {
            has_attackers: false,
            ..sweep_row(&format!("v{i}"), f64::from(i), 0.1 / f64::from(i + 1), 0.0)
        })
        .collect();
    let html = render_sweep("s", &rows);
    assert!(!html.contains("<p class=\"legend\">"), "no colour legend");
    assert!(
        !html.contains("<th class=\"n\">attacker success</th>"),
        "no column"
    );
    assert!(html.contains("no point offered attack traffic"));
    // Every marker is the one neutral colour, none green to red.
    assert!(!html.contains("#2CA02C") && !html.to_lowercase().contains("fill=\"#2ca02c\""));
    // With attackers, the legend and the column are back.
    let mut rows = rows;
    rows[1].has_attackers = true;
    rows[1].attacker_success = 0.25;
    let html = render_sweep("s", &rows);
    assert!(html.contains("<p class=\"legend\">attacker success: "));
    assert!(html.contains("<th class=\"n\">attacker success</th>"));
    assert!(html.contains("no attack traffic"), "the others are marked");
}

/// One SVG `<text>`: `(svg width, x, y, font size, text)`.
type SvgText = (f64, f64, f64, f64, String);

/// Every `<text>` of each SVG on the page.
fn svg_texts(html: &str) -> Vec<Vec<SvgText>> {
    let attr = |tag: &str, name: &str| -> f64 {
        let key = format!(" {name}=\"");
        let i = tag.find(&key).unwrap() + key.len();
        tag[i..i + tag[i..].find('"').unwrap()].parse().unwrap()
    };
    html.split("<svg ")
        .skip(1)
        .map(|svg| {
            let svg = &svg[..svg.find("</svg>").unwrap()];
            let width = attr(&format!(" {}", &svg[..svg.find('>').unwrap()]), "width");
            svg.split("<text ")
                .skip(1)
                .map(|t| {
                    let end = t.find('>').unwrap();
                    let tag = format!(" {}", &t[..end]);
                    let text = t[end + 1..t.find("</text>").unwrap()].trim().to_owned();
                    (
                        width,
                        attr(&tag, "x"),
                        attr(&tag, "y"),
                        attr(&tag, "font-size"),
                        text,
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn event_labels_stay_inside_their_chart_and_never_overlap() {
    let m = fixture(120);
    let mut a = annotations(120);
    // A crowd of rare events at the right edge, where a label running
    // right would be cut off, and a cluster in the middle.
    for (i, kind) in [
        AnnotationKind::Surge,
        AnnotationKind::Attack,
        AnnotationKind::Fault,
        AnnotationKind::Rollout,
        AnnotationKind::Token,
    ]
    .into_iter()
    .enumerate()
    {
        for at in [119 - i as u64, 60 + i as u64] {
            a.push(Annotation {
                at: Duration::from_secs(at),
                label: format!("a rather long label number {i}"),
                kind,
            });
        }
    }
    let html = render_run(&report("labels", &m, &a, &[]));
    let mut labels_seen = 0;
    for texts in svg_texts(&html) {
        // Event labels are the texts above the plot (in the label strip).
        let labels: Vec<_> = texts.iter().filter(|t| t.2 < 55.0).collect();
        labels_seen += labels.len();
        for (w, x, _, fs, text) in &labels {
            // Half an em is less than any sans-serif face's mean advance.
            let right = x + text.chars().count() as f64 * fs * 0.5;
            assert!(*x >= 0.0 && right <= *w, "{text:?} at {x} runs past {w}");
        }
        for (i, p) in labels.iter().enumerate() {
            for q in &labels[i + 1..] {
                if p.2 != q.2 {
                    continue;
                }
                let span = |t: &SvgText| (t.1, t.1 + t.4.chars().count() as f64 * t.3 * 0.5);
                let ((a0, a1), (b0, b1)) = (span(p), span(q));
                assert!(a1 <= b0 || b1 <= a0, "{:?} overlaps {:?}", p.4, q.4);
            }
        }
    }
    assert!(labels_seen > 40, "labels are drawn: {labels_seen}");
}
