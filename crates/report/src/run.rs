//! The run report: verdict, key numbers, plots, events, configuration.

use std::fmt::Write;

use rampart_metrics::{PlotColumn, RunMetrics};

use crate::chart::{
    FULL, Line, MIXED_COLOR, Marks, SMALL, TimeChart, distinct_versions, kind_color, palette,
    render_heatmap, render_time_chart_sized, version_color,
};
use crate::escape::html;
use crate::fmt::{pct, time_s};
use crate::keys::{
    Group, Key, attack_classes, counters, is_summary_gauge, key_numbers, legit_class,
};
use crate::model::{AnnotationKind, AssertionResult, RunReport};
use crate::page::{figure, foot, head, hex};

/// Most rows in the events table; the rest are counted.
const EVENTS_TABLE_MAX: usize = 500;

/// Renders one run as a self-contained HTML page. See the crate docs.
pub fn render_run(r: &RunReport<'_>) -> String {
    let m = r.metrics;
    let kind = if r.live.is_some() { "live run" } else { "run" };
    let mut s = head(&format!("Rampart {kind}: {}", r.scenario));
    let _ = writeln!(s, "<h1>Rampart {kind}: {}</h1>", html(r.scenario));
    let driver = match r.live {
        // Styled inline: the shared stylesheet, and so every simulated
        // report's bytes, stay as they are.
        Some(what) => format!(
            "<strong class=\"live\" style=\"color:#fff;background:#b45309;padding:0 .4em;\
             border-radius:3px;text-transform:uppercase;font-size:.8rem\">live</strong> {}",
            html(what)
        ),
        None => format!("seed <code>{}</code>", r.seed),
    };
    let _ = writeln!(
        s,
        "<p class=\"meta\">{driver} · policy {} · duration {} · interval {} · {} intervals</p>",
        policy_line(r),
        html(&time_s(m.end.as_secs_f64())),
        html(&m.interval.to_string()),
        m.intervals
    );

    verdict(&mut s, r.assertions);
    key_numbers_section(&mut s, r);
    plots(&mut s, r);
    phases_section(&mut s, m);
    events_section(&mut s, r);

    s.push_str("<h2>Reproduce</h2>\n");
    let _ = writeln!(s, "<pre class=\"cmd\">{}</pre>", html(r.command));
    s.push_str("<h2>Effective configuration</h2>\n");
    let lines = r.config_toml.lines().count();
    let _ = writeln!(
        s,
        "<details><summary>Scenario and policy with defaults filled in ({})</summary>\
         <pre class=\"config\">{}</pre></details>",
        counted(lines, "line"),
        html(r.config_toml)
    );
    foot(&mut s, None);
    s
}

/// `1 line`, `2 lines`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The boot policy's label and hash, then each rollout's label with its
/// time, as the scenario names them.
fn policy_line(r: &RunReport<'_>) -> String {
    let mut s = match r.policy_versions.first() {
        Some(v) if !v.is_empty() => format!(
            "<code>{}</code> (<code>{}</code>)",
            html(v),
            html(r.policy_hash)
        ),
        _ => format!("<code>{}</code>", html(r.policy_hash)),
    };
    let rollouts: Vec<String> = r
        .annotations
        .iter()
        .filter(|a| a.kind == AnnotationKind::Rollout && a.label.starts_with("rollout "))
        .map(|a| {
            format!(
                "<code>{}</code> at {}",
                html(a.label.trim_start_matches("rollout ")),
                html(&time_s(a.at.as_secs_f64()))
            )
        })
        .collect();
    if !rollouts.is_empty() {
        let _ = write!(s, ", then {}", rollouts.join(", "));
    }
    s
}

/// A policy version number's label: the scenario's own where it has one.
pub(crate) fn version_label(versions: &[String], v: u32) -> String {
    match versions.get(v as usize) {
        Some(l) if !l.is_empty() => l.clone(),
        _ => format!("version {v}"),
    }
}

/// Assertions, failures first (each group in declaration order).
pub(crate) fn verdict(s: &mut String, a: &[AssertionResult]) {
    s.push_str("<h2>Verdict</h2>\n");
    let failed = a.iter().filter(|x| !x.passed).count();
    if a.is_empty() {
        s.push_str("<div class=\"verdict none\">no assertions declared</div>\n");
        return;
    }
    if failed > 0 {
        let noun = if a.len() == 1 {
            "assertion"
        } else {
            "assertions"
        };
        let _ = writeln!(
            s,
            "<div class=\"verdict fail\">FAIL: {failed} of {} {noun} failed</div>",
            a.len()
        );
    } else if a.len() == 1 {
        s.push_str("<div class=\"verdict pass\">PASS: the one assertion holds</div>\n");
    } else {
        let _ = writeln!(
            s,
            "<div class=\"verdict pass\">PASS: all {} assertions hold</div>",
            a.len()
        );
    }
    s.push_str(
        "<table class=\"assertions\"><thead><tr><th>result</th><th>assertion</th><th>phase</th>\
         <th class=\"n\">measured</th><th>threshold</th></tr></thead><tbody>\n",
    );
    for x in a
        .iter()
        .filter(|x| !x.passed)
        .chain(a.iter().filter(|x| x.passed))
    {
        let (cls, word) = if x.passed {
            ("pass", "PASS")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(
            s,
            "<tr><td><span class=\"badge {cls}\">{word}</span></td><td><code>{}</code></td><td data-label=\"phase\">{}</td>\
             <td class=\"n\" data-label=\"measured\">{}</td><td data-label=\"threshold\"><code>{}</code></td></tr>",
            html(&x.expr),
            x.phase
                .as_deref()
                .map_or_else(|| "whole run".to_owned(), html),
            html(&x.measured_text),
            html(&x.threshold),
        );
    }
    s.push_str("</tbody></table>\n");
}

fn key_table(s: &mut String, keys: &[&Key]) {
    s.push_str("<table class=\"keys\"><tbody>\n");
    for k in keys {
        let _ = writeln!(
            s,
            "<tr><th><code>{}</code></th><td class=\"n\">{}</td></tr>",
            html(&k.name),
            html(&k.shown())
        );
    }
    s.push_str("</tbody></table>\n");
}

/// Key numbers in their groups, each number once, named by the metric
/// path an assertion would use. Security groups in which nothing happened
/// become one line.
fn key_numbers_section(s: &mut String, r: &RunReport<'_>) {
    let keys = key_numbers(r);
    let of = |g: &Group| keys.iter().filter(|k| k.group == *g).collect::<Vec<_>>();
    s.push_str("<h2>Key numbers</h2>\n<div class=\"cols\">\n");
    for g in [Group::Legit, Group::Fleet] {
        let ks = of(&g);
        if ks.is_empty() {
            continue;
        }
        let _ = writeln!(s, "<div><h3>{}</h3>", html(&g.title()));
        key_table(s, &ks);
        if g == Group::Fleet {
            s.push_str("<p class=\"muted small\"><code>cost.money</code> is at the scenario's price per instance-hour, in whatever currency that price is in.</p>\n");
        }
        s.push_str("</div>\n");
    }
    s.push_str("</div>\n");

    s.push_str("<h2>Security</h2>\n");
    let attacks = attack_classes(r.metrics);
    if attacks.is_empty() {
        s.push_str("<p class=\"muted\">No attack traffic in this run.</p>\n");
    }
    s.push_str("<div class=\"cols\">\n");
    for c in &attacks {
        let g = Group::Attack((*c).to_owned());
        let _ = writeln!(s, "<div><h3>{}</h3>", html(&g.title()));
        key_table(s, &of(&g));
        s.push_str("</div>\n");
    }
    for (g, quiet) in [
        (Group::Revocation, "No revoked token was accepted."),
        (
            Group::StalePolicy,
            "No request was served under a stale policy.",
        ),
        (
            Group::Control,
            "The control plane reloaded and replaced nothing.",
        ),
        (Group::Other, ""),
    ] {
        let ks = of(&g);
        if ks.is_empty() {
            continue;
        }
        let _ = writeln!(s, "<div><h3>{}</h3>", html(&g.title()));
        if ks.iter().all(|k| k.value.is_none_or(|v| v == 0.0)) && !quiet.is_empty() {
            let _ = writeln!(
                s,
                "<p class=\"muted\">{quiet} (All {} are zero.)</p>",
                counted(ks.len(), "counter")
            );
        } else {
            key_table(s, &ks);
        }
        s.push_str("</div>\n");
    }
    s.push_str("</div>\n");
}

/// Seconds per interval, and the y-axis word for a rate built from it.
pub(crate) fn rate_scale(m: &RunMetrics) -> (f64, &'static str) {
    let secs = m.interval.as_secs_f64();
    if secs > 0.0 && secs.is_finite() {
        (1.0 / secs, "per second")
    } else {
        (1.0, "per interval")
    }
}

pub(crate) fn phase_spans(m: &RunMetrics) -> Vec<(String, f64, f64)> {
    m.phases
        .iter()
        .map(|p| (p.name.clone(), p.start.as_secs_f64(), p.end.as_secs_f64()))
        .collect()
}

/// A line for column `name`, if the run has it.
fn line<'a>(
    m: &'a RunMetrics,
    name: &str,
    label: &str,
    i: usize,
    scale: f64,
    dashed: bool,
) -> Option<Line<'a>> {
    let col = m.series.column(name)?;
    Some(Line {
        label: label.to_owned(),
        color: palette(i),
        bucket_end_s: &m.series.bucket_end_s,
        col,
        scale,
        dashed,
    })
}

fn gauge_names(m: &RunMetrics) -> Vec<&str> {
    m.series
        .columns
        .iter()
        .filter_map(|c| c.name.strip_prefix("gauges."))
        .collect()
}

fn gauge_is_all_zero(m: &RunMetrics, g: &str) -> bool {
    m.totals
        .gauges
        .get(g)
        .is_some_and(|s| s.max.unwrap_or(0.0) == 0.0 && s.min.unwrap_or(0.0) == 0.0)
}

fn counter_total(m: &RunMetrics, c: &str) -> u64 {
    m.totals.counters.get(c).copied().unwrap_or(0)
}

/// A counter's running total at each bucket's end: rare outcomes (eleven
/// takeovers in an hour) read as a rising step, where a per-interval line
/// would be a few spikes on the floor.
fn cumulative(m: &RunMetrics, name: &str) -> Option<PlotColumn> {
    let col = m.series.column(name)?;
    let interval_s = m.interval.as_secs_f64();
    let mut sum = 0.0;
    let mut prev_end = 0.0;
    let mut out = Vec::with_capacity(col.mean.len());
    for (mean, end) in col.mean.iter().zip(&m.series.bucket_end_s) {
        // The last bucket may hold fewer intervals than the others.
        let n = if interval_s > 0.0 {
            ((end - prev_end) / interval_s).round().max(1.0)
        } else {
            1.0
        };
        prev_end = *end;
        sum += mean.unwrap_or(0.0) * n;
        out.push(Some(sum));
    }
    Some(PlotColumn {
        name: name.to_owned(),
        min: out.clone(),
        max: out.clone(),
        mean: out,
    })
}

/// What the charts of one run share.
struct Charts<'r> {
    m: &'r RunMetrics,
    marks: Marks,
    x_end: f64,
    rate: f64,
    per: &'static str,
}

impl Charts<'_> {
    fn chart(&self, title: String, y_desc: String, lines: Vec<Line<'_>>, stacked: bool) -> String {
        self.chart_sized(title, y_desc, lines, stacked, 0.0, FULL)
    }

    fn chart_sized(
        &self,
        title: String,
        y_desc: String,
        lines: Vec<Line<'_>>,
        stacked: bool,
        floor: f64,
        size: (u32, u32),
    ) -> String {
        let c = TimeChart {
            title,
            y_desc,
            x_end_s: self.x_end,
            lines,
            stacked,
            y_floor_max: floor,
        };
        render_time_chart_sized(&c, &self.marks, size)
    }
}

const BAND: &str = "Lines are means per pixel column; shaded bands span the minimum and maximum, so short peaks stay visible.";

fn plots(s: &mut String, r: &RunReport<'_>) {
    let m = r.metrics;
    let (rate, per) = rate_scale(m);
    let cx = Charts {
        m,
        marks: Marks::new(r.annotations, phase_spans(m)),
        x_end: m.end.as_secs_f64(),
        rate,
        per,
    };
    s.push_str("<h2>Over time</h2>\n");
    load_charts(s, &cx);
    fleet_charts(s, &cx);
    security_charts(s, r, &cx);
}

fn load_charts(s: &mut String, cx: &Charts<'_>) {
    let (m, rate, per) = (cx.m, cx.rate, cx.per);
    // Completed is dashed: it mostly lies on admitted, and the gaps in its
    // dashes keep admitted visible.
    if let Some(c) = legit_class(m) {
        let lines: Vec<Line<'_>> = [("offered", false), ("admitted", false), ("completed", true)]
            .iter()
            .enumerate()
            .filter_map(|(i, (f, dashed))| line(m, &format!("{c}.{f}"), f, i, rate, *dashed))
            .collect();
        let svg = cx.chart(
            format!("{c}: offered, admitted, completed"),
            format!("requests {per}"),
            lines,
            false,
        );
        figure(s, &svg, &format!("Load of class {c}, {per}. {BAND}"));
    }

    // Rejections stacked by reason (reasons that occurred).
    let reasons: Vec<&String> = m
        .names
        .reasons
        .iter()
        .filter(|rn| m.totals.rejected.get(*rn).is_some_and(|v| *v > 0))
        .collect();
    if reasons.is_empty() {
        s.push_str("<p class=\"muted\">No request was rejected in this run, so there is no rejections chart.</p>\n");
    } else {
        let lines: Vec<Line<'_>> = reasons
            .iter()
            .enumerate()
            .filter_map(|(i, rn)| line(m, &format!("rejected.{rn}"), rn, i, rate, false))
            .collect();
        let svg = cx.chart(
            "Rejections by reason (all classes)".into(),
            format!("rejections {per}"),
            lines,
            true,
        );
        figure(
            s,
            &svg,
            &format!(
                "Stacked mean rejection rate per reason, {per}; reasons that never occurred are left out."
            ),
        );
    }

    if let Some(l) = legit_class(m) {
        let lines: Vec<Line<'_>> = ["p50", "p90", "p99", "p99.9"]
            .iter()
            .enumerate()
            .filter_map(|(i, p)| line(m, &format!("{l}.latency.{p}"), p, i, 1.0, false))
            .collect();
        let svg = cx.chart(
            format!("{l}: latency percentiles per interval"),
            "ms".into(),
            lines,
            false,
        );
        figure(
            s,
            &svg,
            &format!("Latency of completed {l} requests, per interval, in milliseconds. {BAND}"),
        );
    }
}

fn fleet_charts(s: &mut String, cx: &Charts<'_>) {
    let m = cx.m;
    // Summary gauges (exposure, first block) are key numbers, and the cost
    // gauges only ever climb: neither belongs on a chart of the fleet.
    let gauges: Vec<&str> = gauge_names(m)
        .into_iter()
        .filter(|g| !is_summary_gauge(g) && !g.starts_with("cost."))
        .collect();
    let mut used = vec![false; gauges.len()];
    let mut pick = |pred: &dyn Fn(&str) -> bool| -> Vec<&str> {
        let mut out = Vec::new();
        for (i, g) in gauges.iter().enumerate() {
            if !used[i] && pred(g) {
                used[i] = true;
                out.push(*g);
            }
        }
        out
    };
    // Terminated, launched and billed instances accumulate over a run and
    // would flatten the lifecycle states that matter: they get their own.
    let totals = [
        "instances.terminated",
        "instances.billed",
        "instances.launched",
    ];
    let fleet =
        pick(&|g| (g.starts_with("instances.") && !totals.contains(&g)) || g == "desired_capacity");
    let util = pick(&|g| g.ends_with("utilisation") || g.ends_with("utilization"));
    let queues = pick(&|g| g.starts_with("queue_len") || g.starts_with("requests."));
    let lifetime = pick(&|g| totals.contains(&g));
    let pipeline = pick(&|g| g.starts_with("monitoring."));
    let other = pick(&|_| true);
    let gauge_chart =
        |s: &mut String, title: &str, y: &str, names: &[&str], floor: f64, caption: &str| {
            let shown: Vec<&&str> = names
                .iter()
                .filter(|g| {
                    // All-zero lifecycle states (e.g. no boot failures) would
                    // only crowd the legend.
                    !gauge_is_all_zero(m, g)
                        || **g == "instances.in_service"
                        || **g == "desired_capacity"
                })
                .collect();
            if shown.is_empty() {
                return;
            }
            let lines: Vec<Line<'_>> = shown
                .iter()
                .enumerate()
                .filter_map(|(i, g)| {
                    let label = g.strip_prefix("instances.").unwrap_or(g);
                    line(
                        m,
                        &format!("gauges.{g}"),
                        label,
                        i,
                        1.0,
                        **g == "desired_capacity",
                    )
                })
                .collect();
            let svg = cx.chart_sized(title.into(), y.into(), lines, false, floor, FULL);
            figure(s, &svg, caption);
        };
    gauge_chart(
        s,
        "Instances by lifecycle state, and desired capacity",
        "instances",
        &fleet,
        0.0,
        "Instances in each lifecycle state at each interval boundary; desired capacity dashed. States that stayed at zero are left out.",
    );
    gauge_chart(
        s,
        "Utilisation",
        "fraction busy",
        &util,
        1.0,
        "Utilisation sampled at each interval boundary.",
    );
    gauge_chart(
        s,
        "Queue lengths",
        "requests",
        &queues,
        0.0,
        "Queue lengths and requests in flight at each interval boundary.",
    );
    gauge_chart(
        s,
        "Instances launched, terminated and billed, so far",
        "instances",
        &lifetime,
        0.0,
        "Running totals over the run.",
    );
    gauge_chart(
        s,
        "Log pipeline: collector lag",
        "ms",
        &pipeline,
        0.0,
        "The age of the oldest record in the batches that reached the collector in each interval: how late the central detector sees what happened.",
    );
    gauge_chart(
        s,
        "Other gauges",
        "value",
        &other,
        0.0,
        "Gauges not shown above, sampled at each interval boundary.",
    );
}

/// Per attacker: what it tried and what got through, what it achieved
/// (cumulative), and the CPU it cost; then revocation exposure and stale
/// policy over time. A chart with nothing to show is one line instead.
fn security_charts(s: &mut String, r: &RunReport<'_>, cx: &Charts<'_>) {
    let (m, rate, per) = (cx.m, cx.rate, cx.per);
    s.push_str("<h3>Security over time</h3>\n");
    let attacks = attack_classes(m);
    let all_counters = counters(m);
    let mut quiet: Vec<String> = Vec::new();
    for c in &attacks {
        s.push_str("<div class=\"grid\">\n");
        // Attempts, admitted, blocked, succeeded.
        // Each series keeps its colour whether or not the others exist.
        // Attempts come last and dashed: blocked often equals them, and
        // drawn on top with gaps, both stay visible.
        let lines: Vec<Line<'_>> = [
            (format!("counters.{c}.blocked"), "blocked", false),
            (
                format!("counters.{c}.central_blocked"),
                "blocked by central decisions",
                true,
            ),
            (format!("{c}.admitted"), "admitted", false),
            (format!("{c}.completed"), "succeeded", true),
            (format!("counters.{c}.detected"), "detected", true),
            (format!("{c}.offered"), "attempts", true),
        ]
        .iter()
        .enumerate()
        .filter_map(|(i, (col, label, dashed))| line(m, col, label, i, rate, *dashed))
        .collect();
        let svg = cx.chart_sized(
            format!("{c}: attempts and what got through"),
            format!("requests {per}"),
            lines,
            false,
            0.0,
            SMALL,
        );
        figure(
            s,
            &svg,
            &format!("Attempts of {c} and their fate, {per}. {BAND}"),
        );

        // Outcomes, cumulative: every other count of this attacker.
        let prefix = format!("{c}.");
        let outcome_names: Vec<&str> = all_counters
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| {
                n.strip_prefix(&prefix).is_some_and(|rest| {
                    !matches!(rest, "blocked" | "detected" | "central_blocked")
                        && !rest.ends_with("_cpu_us")
                        && !rest.ends_with("_cpu_ms")
                })
            })
            .collect();
        let shown: Vec<&str> = outcome_names
            .iter()
            .copied()
            .filter(|n| counter_total(m, n) > 0)
            .collect();
        let cols: Vec<PlotColumn> = shown
            .iter()
            .filter_map(|n| cumulative(m, &format!("counters.{n}")))
            .collect();
        if cols.is_empty() {
            if !outcome_names.is_empty() {
                quiet.push(format!(
                    "{c}: {} stayed at zero, so there is no outcomes chart.",
                    outcome_names
                        .iter()
                        .map(|n| n.strip_prefix(&prefix).unwrap_or(n).replace('_', " "))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        } else {
            let lines: Vec<Line<'_>> = cols
                .iter()
                .zip(&shown)
                .enumerate()
                .map(|(i, (col, n))| Line {
                    label: n.strip_prefix(&prefix).unwrap_or(n).replace('_', " "),
                    color: palette(i + 3),
                    bucket_end_s: &m.series.bucket_end_s,
                    col,
                    scale: 1.0,
                    dashed: false,
                })
                .collect();
            let svg = cx.chart_sized(
                format!("{c}: what it achieved, so far"),
                "count".into(),
                lines,
                false,
                1.0,
                SMALL,
            );
            figure(s, &svg, &format!("Running totals of {c}'s outcomes."));
        }

        // CPU it cost, in cores.
        let interval_s = m.interval.as_secs_f64().max(f64::MIN_POSITIVE);
        let cpu: Vec<Line<'_>> = [
            ("gateway_cpu_us", "gateway", 1e6),
            ("login_cpu_ms", "token service logins", 1e3),
        ]
        .iter()
        .enumerate()
        .filter(|(_, (n, _, _))| counter_total(m, &format!("{c}.{n}")) > 0)
        .filter_map(|(i, (n, label, per_s))| {
            line(
                m,
                &format!("counters.{c}.{n}"),
                label,
                i + 5,
                1.0 / (interval_s * per_s),
                false,
            )
        })
        .collect();
        if !cpu.is_empty() {
            let svg = cx.chart_sized(
                format!("{c}: CPU it cost"),
                "cores busy".into(),
                cpu,
                false,
                0.0,
                SMALL,
            );
            figure(
                s,
                &svg,
                &format!("CPU spent on {c}'s requests, in cores kept busy. {BAND}"),
            );
        }
        s.push_str("</div>\n");
    }

    // Revocation exposure: revoked tokens accepted, by how long after the
    // revocation, as running totals.
    // The total comes last and dashed: it often equals the youngest age
    // bucket, and drawn on top with gaps, both stay visible.
    let mut revoked: Vec<&str> = all_counters
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| n.starts_with("revoked.accepted_after."))
        .collect();
    if m.totals.counters.contains_key("revoked.accepted") {
        revoked.push("revoked.accepted");
    }
    let rcols: Vec<(String, PlotColumn)> = revoked
        .iter()
        .filter(|n| counter_total(m, n) > 0)
        .filter_map(|n| {
            let label = match n.strip_prefix("revoked.accepted_after.") {
                Some(age) => format!("more than {age} after revocation"),
                None => "all".to_owned(),
            };
            cumulative(m, &format!("counters.{n}")).map(|c| (label, c))
        })
        .collect();
    let stale_verifier = counter_total(m, "verifier.accepted_stale") > 0;
    if rcols.is_empty() && !stale_verifier {
        if !revoked.is_empty() {
            quiet.push(
                "No revoked token was accepted, so there is no revocation-exposure chart.".into(),
            );
        }
    } else {
        s.push_str("<div class=\"grid\">\n");
        if !rcols.is_empty() {
            let lines: Vec<Line<'_>> = rcols
                .iter()
                .enumerate()
                .map(|(i, (label, col))| Line {
                    label: label.clone(),
                    color: palette(i + 3),
                    bucket_end_s: &m.series.bucket_end_s,
                    col,
                    scale: 1.0,
                    dashed: label == "all",
                })
                .collect();
            let svg = cx.chart_sized(
                "Revocation exposure: revoked tokens accepted, so far".into(),
                "requests".into(),
                lines,
                false,
                1.0,
                SMALL,
            );
            figure(
                s,
                &svg,
                "Running totals of requests admitted with a token the token service had already revoked, by how long after the revocation. Token events are marked.",
            );
        }
        if stale_verifier {
            let lines: Vec<Line<'_>> = line(
                m,
                "counters.verifier.accepted_stale",
                "accepted on stale state",
                3,
                rate,
                false,
            )
            .into_iter()
            .collect();
            let svg = cx.chart_sized(
                "Tokens accepted while the verifier's revocation state was stale".into(),
                format!("requests {per}"),
                lines,
                false,
                0.0,
                SMALL,
            );
            figure(
                s,
                &svg,
                &format!(
                    "Requests whose token was accepted while the instance could not refresh its revocation list (fail-open), {per}. {BAND}"
                ),
            );
        }
        s.push_str("</div>\n");
    }

    // Stale policy: requests served under an old version, and the heatmap.
    if counter_total(m, "stale_policy.requests") > 0 {
        let lines: Vec<Line<'_>> = line(
            m,
            "counters.stale_policy.requests",
            "served under a stale policy",
            1,
            rate,
            false,
        )
        .into_iter()
        .collect();
        let svg = cx.chart(
            "Requests served under a stale policy".into(),
            format!("requests {per}"),
            lines,
            false,
        );
        figure(
            s,
            &svg,
            &format!(
                "Requests an instance served with a policy older than the control plane's current one, {per}. Rollouts and reloads are marked. {BAND}"
            ),
        );
    } else if m.totals.counters.contains_key("stale_policy.requests") {
        quiet.push(
            "No request was served under a stale policy, so there is no stale-policy chart.".into(),
        );
    }
    if !quiet.is_empty() {
        s.push_str("<ul class=\"quiet muted\">\n");
        for q in &quiet {
            let _ = writeln!(s, "<li>{}</li>", html(q));
        }
        s.push_str("</ul>\n");
    }

    // Policy-version heatmap.
    let h = &m.policy_versions;
    if h.instances.is_empty() {
        s.push_str("<p class=\"muted\">No per-instance policy versions were recorded.</p>\n");
    } else {
        let svg = render_heatmap(h, cx.x_end, &cx.marks);
        let mut caption = String::from(
            "Policy version each instance ran, per time bucket. Rows are instances in order of first appearance; blank is not running. ",
        );
        if h.untracked_samples > 0 {
            let _ = write!(
                caption,
                "{} samples from instances beyond the tracked cap are not shown. ",
                h.untracked_samples
            );
        }
        s.push_str("<figure>\n");
        s.push_str(&svg);
        s.push_str("\n<p class=\"legend\">");
        let versions = distinct_versions(h);
        for v in &versions {
            let _ = write!(
                s,
                "<span><i style=\"background:{}\"></i>{}</span>",
                hex(version_color(&versions, *v, *v)),
                html(&version_label(r.policy_versions, *v))
            );
        }
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>changed within the bucket</span></p>",
            hex(MIXED_COLOR)
        );
        let _ = write!(
            s,
            "\n<figcaption>{}</figcaption>\n</figure>\n",
            html(&caption)
        );
    }
}

fn phases_section(s: &mut String, m: &RunMetrics) {
    if m.phases.is_empty() {
        return;
    }
    let legit = legit_class(m);
    let attacks = attack_classes(m);
    s.push_str("<h2>Phases</h2>\n<table class=\"phases\"><thead><tr><th>phase</th><th>from</th><th>to</th>");
    if let Some(l) = legit {
        let _ = write!(
            s,
            "<th class=\"n\"><code>{0}.success_rate</code></th><th class=\"n\"><code>{0}.latency.p99</code></th>",
            html(l)
        );
    }
    for a in &attacks {
        let _ = write!(
            s,
            "<th class=\"n\"><code>{}.admitted_rate</code></th>",
            html(a)
        );
    }
    s.push_str("</tr></thead><tbody>\n");
    for p in &m.phases {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            html(&p.name),
            html(&time_s(p.start.as_secs_f64())),
            html(&time_s(p.end.as_secs_f64()))
        );
        if let Some(t) = legit.and_then(|l| p.totals.classes.get(l)) {
            let _ = write!(
                s,
                "<td class=\"n\">{}</td><td class=\"n\">{}</td>",
                pct(t.success_rate),
                html(&crate::fmt::ms(t.latency_ms.p99))
            );
        } else if legit.is_some() {
            s.push_str("<td class=\"n\">—</td><td class=\"n\">—</td>");
        }
        for a in &attacks {
            let v = p
                .totals
                .classes
                .get(*a)
                .and_then(|t| (t.offered > 0).then(|| t.admitted as f64 / t.offered as f64));
            let _ = write!(s, "<td class=\"n\">{}</td>", pct(v));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
}

fn events_section(s: &mut String, r: &RunReport<'_>) {
    s.push_str("<h2>Events</h2>\n");
    if r.annotations.is_empty() && r.annotations_dropped == 0 {
        s.push_str("<p class=\"muted\">No events were annotated.</p>\n");
        return;
    }
    let mut ev: Vec<&crate::model::Annotation> = r.annotations.iter().collect();
    ev.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then(a.kind.cmp(&b.kind))
            .then(a.label.cmp(&b.label))
    });
    s.push_str("<table class=\"events\"><thead><tr><th>at</th><th>kind</th><th>event</th></tr></thead><tbody>\n");
    for a in ev.iter().take(EVENTS_TABLE_MAX) {
        let _ = writeln!(
            s,
            "<tr><td class=\"n\">{}</td><td><span style=\"color:{}\">■</span> {}</td><td>{}</td></tr>",
            html(&time_s(a.at.as_secs_f64())),
            hex(kind_color(a.kind)),
            a.kind.as_str(),
            html(&a.label)
        );
    }
    s.push_str("</tbody></table>\n");
    let more = ev.len().saturating_sub(EVENTS_TABLE_MAX) as u64 + r.annotations_dropped;
    if more > 0 {
        let _ = writeln!(
            s,
            "<p class=\"muted\">{more} further events are not listed.</p>"
        );
    }
}
