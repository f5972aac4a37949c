//! The run report: verdict, key numbers, plots, events, configuration.

use std::fmt::Write;

use rampart_metrics::RunMetrics;

use crate::chart::{
    Line, MIXED_COLOR, Marks, TimeChart, distinct_versions, kind_color, palette, render_heatmap,
    render_time_chart, version_color,
};
use crate::escape::html;
use crate::fmt::{num, pct, time_s};
use crate::keys::{attack_classes, counters, is_stale_counter, key_numbers, legit_class};
use crate::model::{AssertionResult, RunReport};
use crate::page::{figure, foot, head, hex};

/// Most rows in the events table; the rest are counted.
const EVENTS_TABLE_MAX: usize = 500;

/// Renders one run as a self-contained HTML page. See the crate docs.
pub fn render_run(r: &RunReport<'_>) -> String {
    let m = r.metrics;
    let mut s = head(&format!("Rampart run: {}", r.scenario));
    let _ = writeln!(s, "<h1>Rampart run: {}</h1>", html(r.scenario));
    let _ = writeln!(
        s,
        "<p class=\"meta\">seed <code>{}</code> · policy <code>{}</code> · duration {} · interval {} · {} intervals</p>",
        r.seed,
        html(r.policy_hash),
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
    s.push_str("<p class=\"meta\">Scenario and policy with defaults filled in.</p>\n");
    let _ = writeln!(s, "<pre class=\"config\">{}</pre>", html(r.config_toml));
    foot(&mut s, None);
    s
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
            "<tr><td><span class=\"badge {cls}\">{word}</span></td><td><code>{}</code></td><td>{}</td>\
             <td class=\"n\">{}</td><td><code>{}</code></td></tr>",
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

fn key_numbers_section(s: &mut String, r: &RunReport<'_>) {
    let m = r.metrics;
    s.push_str("<h2>Key numbers</h2>\n<table class=\"keys\"><tbody>\n");
    for k in key_numbers(r) {
        if k.name == "assertions failed" {
            continue;
        }
        let _ = writeln!(
            s,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            html(&k.name),
            html(&k.shown())
        );
    }
    s.push_str("</tbody></table>\n");

    s.push_str("<h3>Attacker outcomes</h3>\n");
    let attacks = attack_classes(m);
    if attacks.is_empty() {
        s.push_str("<p class=\"muted\">No attack traffic in this run.</p>\n");
    } else {
        s.push_str(
            "<table class=\"attacks\"><thead><tr><th>class</th><th class=\"n\">offered</th>\
             <th class=\"n\">admitted</th><th class=\"n\">completed</th><th class=\"n\">success rate</th>\
             <th>rejected by</th></tr></thead><tbody>\n",
        );
        for c in attacks {
            let t = &m.totals.classes[c];
            let mut by: Vec<(&String, &u64)> = t
                .rejected_by_reason
                .iter()
                .filter(|(_, v)| **v > 0)
                .collect();
            by.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let by = by
                .iter()
                .map(|(k, v)| format!("{} {}", html(k), num(Some(**v as f64))))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{} ({})</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td>{}</td></tr>",
                html(c),
                num(Some(t.offered as f64)),
                num(Some(t.admitted as f64)),
                pct((t.offered > 0).then(|| t.admitted as f64 / t.offered as f64)),
                num(Some(t.completed as f64)),
                pct(t.success_rate),
                if by.is_empty() { "—".to_owned() } else { by },
            );
        }
        s.push_str("</tbody></table>\n");
    }

    s.push_str("<h3>Security counters</h3>\n");
    let cs = counters(m);
    if cs.is_empty() {
        s.push_str("<p class=\"muted\">No security counters were recorded in this run.</p>\n");
    } else {
        s.push_str("<table class=\"counters\"><tbody>\n");
        for (c, v) in &cs {
            let _ = writeln!(
                s,
                "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
                html(c),
                num(Some(*v as f64))
            );
        }
        s.push_str("</tbody></table>\n");
    }
    s.push_str("<h3>Stale-policy exposure</h3>\n");
    let stale: Vec<_> = cs.iter().filter(|(c, _)| is_stale_counter(c)).collect();
    if stale.is_empty() {
        s.push_str("<p class=\"muted\">Not measured in this run (no stale-policy counter was recorded).</p>\n");
    } else {
        s.push_str("<table class=\"stale\"><tbody>\n");
        for (c, v) in stale {
            let _ = writeln!(
                s,
                "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
                html(c),
                num(Some(*v as f64))
            );
        }
        s.push_str("</tbody></table>\n");
    }
    let _ = writeln!(
        s,
        "<h3>Cost</h3>\n<table class=\"cost\"><tbody><tr><th>instance-hours</th><td class=\"n\">{}</td></tr>\
         <tr><th>cost</th><td class=\"n\">{}</td></tr></tbody></table>",
        num(Some(r.cost.instance_hours)),
        html(&format!("{:.2}", r.cost.money)),
    );
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

fn plots(s: &mut String, r: &RunReport<'_>) {
    let m = r.metrics;
    let marks = Marks::new(r.annotations, phase_spans(m));
    let x_end = m.end.as_secs_f64();
    let (rate, per) = rate_scale(m);
    let chart = |title: String, y_desc: String, lines: Vec<Line<'_>>, stacked: bool, floor: f64| {
        render_time_chart(
            &TimeChart {
                title,
                y_desc,
                x_end_s: x_end,
                lines,
                stacked,
                y_floor_max: floor,
            },
            &marks,
        )
    };
    s.push_str("<h2>Over time</h2>\n");
    let band = "Lines are means per pixel column; shaded bands span the minimum and maximum, so short peaks stay visible.";

    // Offered vs admitted, per class.
    let mut classes: Vec<&str> = legit_class(m).into_iter().collect();
    classes.extend(attack_classes(m));
    for c in classes {
        let lines: Vec<Line<'_>> = ["offered", "admitted", "completed"]
            .iter()
            .enumerate()
            .filter_map(|(i, f)| line(m, &format!("{c}.{f}"), f, i, rate, false))
            .collect();
        let svg = chart(
            format!("{c}: offered, admitted, completed"),
            format!("requests {per}"),
            lines,
            false,
            0.0,
        );
        figure(s, &svg, &format!("Load of class {c}, {per}. {band}"));
    }

    // Rejections stacked by reason (reasons that occurred).
    let reasons: Vec<&String> = m
        .names
        .reasons
        .iter()
        .filter(|rn| m.totals.rejected.get(*rn).is_some_and(|v| *v > 0))
        .collect();
    if reasons.is_empty() {
        s.push_str("<p class=\"muted\">No request was rejected in this run.</p>\n");
    } else {
        let lines: Vec<Line<'_>> = reasons
            .iter()
            .enumerate()
            .filter_map(|(i, rn)| line(m, &format!("rejected.{rn}"), rn, i, rate, false))
            .collect();
        let svg = chart(
            "Rejections by reason (all classes)".into(),
            format!("rejections {per}"),
            lines,
            true,
            0.0,
        );
        figure(
            s,
            &svg,
            &format!(
                "Stacked mean rejection rate per reason, {per}; reasons that never occurred are left out."
            ),
        );
    }

    // Legit latency percentiles.
    if let Some(l) = legit_class(m) {
        let lines: Vec<Line<'_>> = ["p50", "p90", "p99", "p99.9"]
            .iter()
            .enumerate()
            .filter_map(|(i, p)| line(m, &format!("{l}.latency.{p}"), p, i, 1.0, false))
            .collect();
        let svg = chart(
            format!("{l}: latency percentiles per interval"),
            "ms".into(),
            lines,
            false,
            0.0,
        );
        figure(
            s,
            &svg,
            &format!("Latency of completed {l} requests, per interval, in milliseconds. {band}"),
        );
    }

    // Gauges: fleet, utilisation, queues, then anything else.
    let gauges = gauge_names(m);
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
    // `instances.terminated` and `instances.billed` are kept for the "other
    // gauges" chart: terminated instances accumulate over a run and would
    // flatten the lifecycle states that matter.
    let fleet = pick(&|g| {
        (g.starts_with("instances.") && g != "instances.terminated" && g != "instances.billed")
            || g == "desired_capacity"
    });
    let util = pick(&|g| g.ends_with("utilisation") || g.ends_with("utilization"));
    let queues = pick(&|g| g.starts_with("queue_len") || g.starts_with("requests."));
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
            let svg = chart(title.into(), y.into(), lines, false, floor);
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
        "Other gauges",
        "value",
        &other,
        0.0,
        "Gauges not shown above, sampled at each interval boundary.",
    );

    // Security counters over time.
    let cs = counters(m);
    if cs.is_empty() {
        s.push_str("<p class=\"muted\">No security counters were recorded, so there is no security-outcome plot.</p>\n");
    } else {
        let lines: Vec<Line<'_>> = cs
            .iter()
            .enumerate()
            .filter_map(|(i, (c, _))| line(m, &format!("counters.{c}"), c, i, 1.0, false))
            .collect();
        let svg = chart(
            "Security outcomes".into(),
            "events per interval".into(),
            lines,
            false,
            1.0,
        );
        figure(
            s,
            &svg,
            &format!(
                "Security counters, events per interval ({}). {band}",
                m.interval
            ),
        );
    }

    // Policy-version heatmap.
    let h = &m.policy_versions;
    if h.instances.is_empty() {
        s.push_str("<p class=\"muted\">No per-instance policy versions were recorded.</p>\n");
    } else {
        let svg = render_heatmap(h, x_end, &marks);
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
        figure(s, &svg, &caption);
        s.push_str("<p class=\"legend\">");
        let versions = distinct_versions(h);
        for v in &versions {
            let _ = write!(
                s,
                "<span><i style=\"background:{}\"></i>version {v}</span>",
                hex(version_color(&versions, *v, *v))
            );
        }
        let _ = writeln!(
            s,
            "<span><i style=\"background:{}\"></i>changed within the bucket</span></p>",
            hex(MIXED_COLOR)
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
            "<th class=\"n\">{0} success</th><th class=\"n\">{0} p99</th>",
            html(l)
        );
    }
    for a in &attacks {
        let _ = write!(s, "<th class=\"n\">{} admitted</th>", html(a));
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
            html(&a.at.to_string()),
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
