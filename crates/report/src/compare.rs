//! Comparison and sweep pages.

use std::error::Error;
use std::fmt::Write;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rampart_metrics::RunMetrics;

use crate::chart::{Line, Marks, TimeChart, WIDTH_PX, palette, render_time_chart};
use crate::escape::{html, push_html, svg_label};
use crate::fmt::{num, pct, sig3};
use crate::keys::{Better, Key, Unit, key_numbers, legit_class, show};
use crate::model::{Annotation, AnnotationKind, RunReport, SweepRow, Variant};
use crate::page::{figure, foot, head, hex};
use crate::run::{phase_spans, rate_scale, verdict};

/// Renders variants side by side: a verdict line per variant, the key
/// numbers with deltas against the first variant, overlaid time series
/// (legit p99, legit offered and admitted, instances in service) and each
/// variant's rejections by reason. Each variant's name links to its own run
/// report when it has a relative `href`; names are escaped.
pub fn render_compare(variants: &[Variant<'_>]) -> String {
    let title = format!(
        "Rampart comparison: {}",
        variants
            .iter()
            .map(|v| v.name)
            .collect::<Vec<_>>()
            .join(" vs ")
    );
    let mut s = head(&title);
    let _ = writeln!(s, "<h1>{}</h1>", html(&title));
    if variants.is_empty() {
        s.push_str("<p class=\"muted\">No variants to compare.</p>\n");
        foot(&mut s, None);
        return s;
    }
    s.push_str("<p class=\"legend\">");
    for (i, v) in variants.iter().enumerate() {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{} (seed {}, policy <code>{}</code>)</span>",
            hex(palette(i)),
            linked(v),
            v.report.seed,
            html(v.report.policy_hash)
        );
    }
    s.push_str("</p>\n");
    if variants.iter().any(|v| link(v).is_some()) {
        s.push_str(
            "<p class=\"meta\">Each variant's name links to its own run report, with every plot.</p>\n",
        );
    }

    // Verdicts, one short block per variant.
    for v in variants {
        let _ = writeln!(s, "<h3>{}</h3>", linked(v));
        let mut out = String::new();
        verdict(&mut out, v.report.assertions);
        // The run page's verdict has its own h2; here the variant is the
        // heading. Its table scrolls in its own box, so that on a phone the
        // long assertions do not widen the whole page.
        let out = out.trim_start_matches("<h2>Verdict</h2>\n");
        match out.find("<table") {
            Some(t) => {
                s.push_str(&out[..t]);
                s.push_str("<div class=\"scroll\">");
                s.push_str(out[t..].trim_end());
                s.push_str("</div>\n");
            }
            None => s.push_str(out),
        }
    }

    key_table(&mut s, variants);
    overlays(&mut s, variants);
    rejections(&mut s, variants);

    s.push_str("<h2>Reproduce</h2>\n");
    for v in variants {
        let _ = writeln!(
            s,
            "<h3>{}</h3>\n<pre class=\"cmd\">{}</pre>",
            html(v.name),
            html(v.report.command)
        );
    }
    s.push_str("<h2>Effective configuration</h2>\n");
    for v in variants {
        let _ = writeln!(
            s,
            "<details><summary>{}</summary><pre class=\"config\">{}</pre></details>",
            html(v.name),
            html(v.report.config_toml)
        );
    }
    foot(&mut s, None);
    s
}

/// The variant's link, if it is relative: a comparison is a folder that is
/// moved and archived whole, so an absolute link would point elsewhere or
/// nowhere, and a `javascript:` one must never reach the page.
fn link<'a>(v: &Variant<'a>) -> Option<&'a str> {
    v.href.filter(|h| is_relative_href(h))
}

/// The variant's escaped name, linked to its report when it has a link.
fn linked(v: &Variant<'_>) -> String {
    match link(v) {
        Some(h) => format!("<a href=\"{}\">{}</a>", html(h), html(v.name)),
        None => html(v.name),
    }
}

fn key_table(s: &mut String, variants: &[Variant<'_>]) {
    let keys: Vec<Vec<Key>> = variants.iter().map(|v| key_numbers(v.report)).collect();
    // Rows: every key name in order of first appearance across variants.
    let mut names: Vec<(&str, Unit, Better)> = Vec::new();
    for k in keys.iter().flatten() {
        if !names.iter().any(|n| n.0 == k.name) {
            names.push((&k.name, k.unit, k.better));
        }
    }
    s.push_str("<h2>Key numbers</h2>\n<div class=\"scroll\"><table class=\"compare\"><thead><tr><th>metric</th>");
    for (i, v) in variants.iter().enumerate() {
        let _ = write!(s, "<th class=\"n\">{}</th>", linked(v));
        if i > 0 {
            let _ = write!(s, "<th class=\"n\">Δ vs {}</th>", html(variants[0].name));
        }
    }
    s.push_str("</tr></thead><tbody>\n");
    for (name, unit, better) in names {
        let _ = write!(s, "<tr><th>{}</th>", html(name));
        let value = |i: usize| {
            keys[i]
                .iter()
                .find(|k| k.name == name)
                .and_then(|k| k.value)
        };
        let base = value(0);
        for i in 0..variants.len() {
            let _ = write!(s, "<td class=\"n\">{}</td>", html(&show(value(i), unit)));
            if i > 0 {
                let _ = write!(
                    s,
                    "<td class=\"n\">{}</td>",
                    delta(base, value(i), unit, better)
                );
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table></div>\n");
}

/// The change from `base` to `v`, coloured by whether it is an improvement.
/// Rates change in percentage points; other numbers also show the relative
/// change.
fn delta(base: Option<f64>, v: Option<f64>, unit: Unit, better: Better) -> String {
    let (Some(a), Some(b)) = (base, v) else {
        return "—".to_owned();
    };
    let d = b - a;
    if !d.is_finite() {
        return "—".to_owned();
    }
    if d == 0.0 {
        return "<span class=\"muted\">0</span>".to_owned();
    }
    let cls = match (better, d > 0.0) {
        (Better::Higher, true) | (Better::Lower, false) => "good",
        (Better::Higher, false) | (Better::Lower, true) => "bad",
        (Better::Neither, _) => "muted",
    };
    let sign = if d > 0.0 { "+" } else { "" };
    let text = match unit {
        Unit::Pct => format!("{sign}{} pp", sig3(d * 100.0)),
        _ => {
            let rel = if a != 0.0 {
                format!(" ({sign}{})", pct(Some(d / a.abs())))
            } else {
                String::new()
            };
            let d = match unit {
                Unit::Ms => format!("{sign}{} ms", sig3(d)),
                _ => format!("{sign}{}", sig3(d)),
            };
            format!("{d}{rel}")
        }
    };
    format!("<span class=\"{cls}\">{}</span>", html(&text))
}

fn overlays(s: &mut String, variants: &[Variant<'_>]) {
    s.push_str("<h2>Over time</h2>\n");
    let x_end = variants
        .iter()
        .map(|v| v.report.metrics.end.as_secs_f64())
        .fold(0.0, f64::max);
    let marks = Marks::new(
        &shared_events(variants),
        phase_spans(variants[0].report.metrics),
    );
    let chart = |title: &str, y: &str, lines: Vec<Line<'_>>| {
        render_time_chart(
            &TimeChart {
                title: title.to_owned(),
                y_desc: y.to_owned(),
                x_end_s: x_end,
                lines,
                stacked: false,
                y_floor_max: 0.0,
            },
            &marks,
        )
    };
    let pick =
        |field: &dyn Fn(&str) -> String, scale: &dyn Fn(&RunReport<'_>) -> f64, dashed: bool| {
            variants
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let (name, r) = (v.name, v.report);
                    let m = r.metrics;
                    let col = m.series.column(&field(legit_class(m).unwrap_or("legit")))?;
                    Some(Line {
                        label: if dashed {
                            format!("{name} (offered)")
                        } else {
                            name.to_owned()
                        },
                        color: palette(i),
                        bucket_end_s: &m.series.bucket_end_s,
                        col,
                        scale: scale(r),
                        dashed,
                    })
                })
                .collect::<Vec<_>>()
        };
    let one = |_: &RunReport<'_>| 1.0;
    let rate = |r: &RunReport<'_>| rate_scale(r.metrics).0;

    let lines = pick(&|l| format!("{l}.latency.p99"), &one, false);
    figure(
        s,
        &chart("legit latency p99", "ms", lines),
        "Legit p99 latency per interval, one line per variant; bands span min..max per pixel column.",
    );
    let mut lines = pick(&|l| format!("{l}.offered"), &rate, true);
    lines.extend(pick(&|l| format!("{l}.admitted"), &rate, false));
    figure(
        s,
        &chart(
            "legit offered (dashed) and admitted",
            "requests per second",
            lines,
        ),
        "Legit load per second: offered dashed, admitted solid, one colour per variant.",
    );
    let lines = pick(&|_| "gauges.instances.in_service".to_owned(), &one, false);
    figure(
        s,
        &chart("instances in service", "instances", lines),
        "Instances in service at each interval boundary.",
    );
}

/// Events that are the same story in every variant (surges, attacks,
/// faults, rollouts, token events), each once. Scale decisions, drift
/// remediations and detections differ per variant and would be noise when
/// overlaid, so they stay on each run's page.
fn shared_events(variants: &[Variant<'_>]) -> Vec<Annotation> {
    let mut events = Vec::new();
    for v in variants {
        for a in v
            .report
            .annotations
            .iter()
            .filter(|a| !a.kind.is_frequent() && a.kind != AnnotationKind::Detection)
        {
            if !events.contains(a) {
                events.push(a.clone());
            }
        }
    }
    events
}

/// Rejection reasons that occurred in at least one variant, in order of
/// first registration across the variants. A reason's index here is its
/// colour on every variant's chart, so `rate_limited` is one colour for
/// the whole page even where another variant never rejected for it.
pub(crate) fn occurred_reasons<'a>(variants: &[Variant<'a>]) -> Vec<&'a str> {
    let mut reasons: Vec<&str> = Vec::new();
    for v in variants {
        let m = v.report.metrics;
        for rn in &m.names.reasons {
            let occurred = m.totals.rejected.get(rn).is_some_and(|n| *n > 0);
            if occurred && !reasons.contains(&rn.as_str()) {
                reasons.push(rn);
            }
        }
    }
    reasons
}

/// One stacked chart per variant rather than one overlaid chart: stacks of
/// several reasons from several variants cannot share one plot area
/// without hiding each other, and the run page's stacked chart is the one
/// readers already know. The charts share colours per reason, the time
/// axis and the y range, so heights compare across variants at a glance.
fn rejections<'a>(s: &mut String, variants: &[Variant<'a>]) {
    s.push_str("<h3>Rejections by reason</h3>\n");
    let reasons = occurred_reasons(variants);
    if reasons.is_empty() {
        s.push_str("<p class=\"muted\">No request was rejected in any variant.</p>\n");
        return;
    }
    s.push_str(
        "<p class=\"meta\">One chart per variant, stacked by reason (all classes). Every chart has the same colour \
         for a reason and the same y range; reasons that never occurred in any variant are left out.</p>\n",
    );
    let x_end = variants
        .iter()
        .map(|v| v.report.metrics.end.as_secs_f64())
        .fold(0.0, f64::max);
    let events = shared_events(variants);
    let lines_of = |v: &Variant<'a>| reason_lines(v.report.metrics, &reasons);
    // The tallest stack of any variant, in the units the charts draw, so
    // every chart's y axis reaches it (the chart adds the same headroom).
    let y_max = variants
        .iter()
        .map(|v| {
            let lines = lines_of(v);
            let n = lines.iter().map(|l| l.col.mean.len()).max().unwrap_or(0);
            (0..n)
                .map(|i| {
                    lines
                        .iter()
                        .filter_map(|l| l.col.mean.get(i).copied().flatten())
                        .map(|x| (x * rate_scale(v.report.metrics).0).max(0.0))
                        .filter(|x| x.is_finite())
                        .sum::<f64>()
                })
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max);
    for v in variants {
        let m = v.report.metrics;
        let lines = lines_of(v);
        if lines.is_empty() {
            let _ = writeln!(
                s,
                "<p class=\"muted\">{}: no request was rejected.</p>",
                linked(v)
            );
            continue;
        }
        let per = rate_scale(m).1;
        let svg = render_time_chart(
            &TimeChart {
                title: format!("{}: rejections by reason (all classes)", v.name),
                y_desc: format!("rejections {per}"),
                x_end_s: x_end,
                lines,
                stacked: true,
                y_floor_max: y_max,
            },
            &Marks::new(&events, phase_spans(m)),
        );
        figure(
            s,
            &svg,
            &format!("{}: mean rejection rate per reason, {per}.", v.name),
        );
    }
}

/// The run's rejection columns, one per reason of `reasons` that it saw,
/// coloured by the reason's index in `reasons`.
pub(crate) fn reason_lines<'m>(m: &'m RunMetrics, reasons: &[&str]) -> Vec<Line<'m>> {
    let rate = rate_scale(m).0;
    reasons
        .iter()
        .enumerate()
        .filter(|(_, rn)| m.totals.rejected.get(**rn).is_some_and(|n| *n > 0))
        .filter_map(|(i, rn)| {
            Some(Line {
                label: (*rn).to_owned(),
                color: palette(i),
                bucket_end_s: &m.series.bucket_end_s,
                col: m.series.column(&format!("rejected.{rn}"))?,
                scale: rate,
                dashed: false,
            })
        })
        .collect()
}

/// Sorts the sweep table by a column when its header is clicked. The table
/// is complete and readable without it.
const SORT_JS: &str = r#"
(function(){
  document.querySelectorAll("table.sortable").forEach(function(t){
    var ths=t.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths,function(th,col){
      th.setAttribute("aria-sort","none");th.tabIndex=0;
      function go(){
        var asc=th.getAttribute("aria-sort")!=="ascending";
        Array.prototype.forEach.call(ths,function(o){o.setAttribute("aria-sort","none");});
        th.setAttribute("aria-sort",asc?"ascending":"descending");
        var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){
          var x=a.cells[col].getAttribute("data-v"),y=b.cells[col].getAttribute("data-v");
          var nx=parseFloat(x),ny=parseFloat(y),r;
          if(!isNaN(nx)&&!isNaN(ny)){r=nx-ny;}else if(!isNaN(nx)){r=-1;}else if(!isNaN(ny)){r=1;}
          else{r=String(x).localeCompare(String(y));}
          return asc?r:-r;
        });
        rows.forEach(function(r){body.appendChild(r);});
      }
      th.addEventListener("click",go);
      th.addEventListener("keydown",function(e){if(e.key==="Enter"||e.key===" "){e.preventDefault();go();}});
    });
  });
})();
"#;

/// Indices of rows no other row beats on all three of cost, legit failure
/// and attacker success (lower is better on each) while being strictly
/// better on one. Rows with a non-finite value are never on the front.
pub fn pareto_front(rows: &[SweepRow]) -> Vec<usize> {
    let key = |r: &SweepRow| [r.cost, r.legit_failure_rate, r.attacker_success];
    let finite = |r: &SweepRow| key(r).iter().all(|v| v.is_finite());
    (0..rows.len())
        .filter(|&i| finite(&rows[i]))
        .filter(|&i| {
            let a = key(&rows[i]);
            !rows.iter().any(|o| {
                let b = key(o);
                finite(o)
                    && b.iter().zip(&a).all(|(x, y)| x <= y)
                    && b.iter().zip(&a).any(|(x, y)| x < y)
            })
        })
        .collect()
}

/// Renders a sweep of `scenario`: the Pareto view (cost against legit
/// failure rate, colour by attacker success, the Pareto front ringed) and a
/// table of every variant with its verdict, sortable by each column with a
/// little inline script. The page works without the script: the table is
/// complete and starts in cost order.
pub fn render_sweep(scenario: &str, rows: &[SweepRow]) -> String {
    let title = format!("Rampart sweep: {scenario}");
    let mut s = head(&title);
    let failed = rows.iter().filter(|r| !r.passed).count();
    let _ = writeln!(
        s,
        "<h1>{}</h1>\n<p class=\"meta\">{} variants · {} pass · {failed} fail</p>",
        html(&title),
        rows.len(),
        rows.len() - failed,
    );
    // Without attack traffic, attacker success is 0 by definition: a colour
    // scale and a column for it would only suggest a result there is not.
    let attackers = rows.iter().any(|r| r.has_attackers);
    let front = pareto_front(rows);
    s.push_str("<h2>Pareto view</h2>\n");
    let mut svg = String::new();
    let mut groups = Vec::new();
    let drawn = draw_scatter(&mut svg, rows, &front, attackers, &mut groups);
    let svg = match drawn {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"err\">could not draw the scatter: {}</p>",
            html(&e.to_string())
        ),
    };
    let (colour, over) = if attackers {
        (
            "colour from green (no attacker success) to red (highest in the sweep), grey where a point had no attack traffic; \
             a marker holding several points takes the worst colour among them.",
            "all three",
        )
    } else {
        (
            "no point offered attack traffic, so colour encodes nothing.",
            "cost and legit failure",
        )
    };
    figure(
        &mut s,
        &svg,
        &format!(
            "Each point is a variant: cost against legit failure rate; {colour} \
             Ringed points are on the Pareto front over {over} (no other variant is at least as good on each and better on one); \
             the line joins the cost/failure front. Points that would hide one another are drawn as one marker with their count, listed below."
        ),
    );
    let a_max = attacker_max(rows);
    if attackers {
        s.push_str("<p class=\"legend\">attacker success: ");
        if a_max > 0.0 {
            for k in 0..=4 {
                let t = f64::from(k) / 4.0;
                let _ = write!(
                    s,
                    "<span><i style=\"background:{}\"></i>{}</span>",
                    hex(heat(t)),
                    pct(Some(t * a_max))
                );
            }
        } else {
            // A gradient from 0% to 0% would read as five results; there is one.
            let _ = write!(
                s,
                "<span><i style=\"background:{}\"></i>0% at every point with attack traffic</span>",
                hex(heat(0.0))
            );
        }
        if rows.iter().any(|r| !r.has_attackers) {
            let _ = write!(
                s,
                "<span><i style=\"background:{}\"></i>no attack traffic</span>",
                hex(NO_ATTACK_COLOR)
            );
        }
        s.push_str("</p>\n");
    }
    coincident_list(&mut s, rows, &groups);
    sweep_table(&mut s, rows, &front, attackers);
    foot(&mut s, Some(SORT_JS));
    s
}

/// Failed assertions shown in a table cell; the rest are counted, and all
/// of them are in the cell's tooltip.
const FAILED_SHOWN_MAX: usize = 3;

/// The colour of a point without attack traffic, and of every point in a
/// sweep without attackers (where colour encodes nothing).
const NO_ATTACK_COLOR: RGBColor = RGBColor(120, 130, 145);

fn attacker_max(rows: &[SweepRow]) -> f64 {
    rows.iter()
        .filter(|r| r.has_attackers)
        .map(|r| r.attacker_success)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

/// Under the chart, every marker that stands for more than one point, with
/// all their labels: the chart has room for a count, not for the names.
fn coincident_list(s: &mut String, rows: &[SweepRow], groups: &[Vec<usize>]) {
    let multi: Vec<&Vec<usize>> = groups.iter().filter(|g| g.len() > 1).collect();
    if multi.is_empty() {
        return;
    }
    s.push_str("<p class=\"meta\">Drawn as one marker (same cost and legit failure rate, to the pixel):</p>\n<ul class=\"coincident\">\n");
    for g in multi {
        let r = &rows[g[0]];
        let _ = writeln!(
            s,
            "<li>×{} at cost {}, legit failure {}: {}</li>",
            g.len(),
            html(&num(Some(r.cost))),
            html(&pct(Some(r.legit_failure_rate))),
            g.iter()
                .map(|&i| html(&rows[i].label))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    s.push_str("</ul>\n");
}

/// The table of every variant: label, each parameter (first-appearance
/// order), the outcomes, the verdict and the front. It scrolls inside its
/// own box, so long parameter values never widen the page.
fn sweep_table(s: &mut String, rows: &[SweepRow], front: &[usize], attackers: bool) {
    let mut params: Vec<&str> = Vec::new();
    for r in rows {
        for (k, _) in &r.params {
            if !params.contains(&k.as_str()) {
                params.push(k);
            }
        }
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        rows[a]
            .cost
            .total_cmp(&rows[b].cost)
            .then(
                rows[a]
                    .legit_failure_rate
                    .total_cmp(&rows[b].legit_failure_rate),
            )
            .then(a.cmp(&b))
    });
    s.push_str("<h2>Variants</h2>\n<p class=\"meta\">Click a column header to sort (needs JavaScript; the table starts in cost order).</p>\n");
    s.push_str("<div class=\"scroll\"><table class=\"sortable sweep\"><thead><tr><th>variant</th>");
    for p in &params {
        let _ = write!(s, "<th>{}</th>", breakable(p));
    }
    s.push_str("<th class=\"n\">cost</th><th class=\"n\">legit failure</th>");
    if attackers {
        s.push_str("<th class=\"n\">attacker success</th>");
    }
    s.push_str("<th>verdict</th><th>Pareto</th></tr></thead><tbody>\n");
    let dv = |v: f64| {
        if v.is_finite() {
            format!("{v:e}")
        } else {
            String::new()
        }
    };
    for i in order {
        let r = &rows[i];
        let label = match r.href.as_deref().filter(|h| is_relative_href(h)) {
            Some(h) => format!("<a href=\"{}\">{}</a>", html(h), breakable(&r.label)),
            None => breakable(&r.label),
        };
        let _ = write!(s, "<tr><td data-v=\"{}\">{label}</td>", html(&r.label));
        for p in &params {
            let v = r
                .params
                .iter()
                .find(|(k, _)| k == p)
                .map_or("", |(_, v)| v.as_str());
            // Numeric-looking values sort numerically in the script.
            let _ = write!(s, "<td data-v=\"{}\">{}</td>", html(v), breakable(v));
        }
        let _ = write!(
            s,
            "<td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td>",
            dv(r.cost),
            num(Some(r.cost)),
            dv(r.legit_failure_rate),
            pct(Some(r.legit_failure_rate)),
        );
        if attackers && r.has_attackers {
            let _ = write!(
                s,
                "<td class=\"n\" data-v=\"{}\">{}</td>",
                dv(r.attacker_success),
                pct(Some(r.attacker_success)),
            );
        } else if attackers {
            // Sorts after every measured value: there is nothing to rank.
            s.push_str("<td class=\"n muted\" data-v=\"\" title=\"no attack traffic\">—</td>");
        }
        verdict_cell(s, r);
        let on = front.contains(&i);
        let _ = writeln!(
            s,
            "<td data-v=\"{}\">{}</td></tr>",
            u8::from(!on),
            if on { "front" } else { "" },
        );
    }
    s.push_str("</tbody></table></div>\n");
}

/// Escaped text with a line-break opportunity after each `.`, `_`, `/`
/// and `,`: parameter paths and values such as
/// `scaling.controller.max_replicas` have no spaces, and unbroken they set
/// the table's narrowest width, so it could not fit a phone.
fn breakable(t: &str) -> String {
    let mut out = String::with_capacity(t.len() * 2);
    let mut buf = [0u8; 4];
    for c in t.chars() {
        push_html(&mut out, c.encode_utf8(&mut buf));
        if matches!(c, '.' | '_' | '/' | ',') {
            out.push_str("<wbr>");
        }
    }
    out
}

/// PASS or FAIL as the run page's badge, and under a FAIL the assertions
/// that failed: in small text, so they show on a phone and in print where
/// a tooltip would not, with the full list in the tooltip too.
fn verdict_cell(s: &mut String, r: &SweepRow) {
    if r.passed {
        s.push_str("<td data-v=\"1\"><span class=\"badge pass\">PASS</span></td>");
        return;
    }
    let all = r.failed.join("\n");
    let _ = write!(
        s,
        "<td data-v=\"0\" title=\"{}\"><span class=\"badge fail\">FAIL</span>",
        html(&all)
    );
    if !r.failed.is_empty() {
        s.push_str("<div class=\"why\">");
        for (k, f) in r.failed.iter().take(FAILED_SHOWN_MAX).enumerate() {
            if k > 0 {
                s.push_str("<br>");
            }
            s.push_str(&html(f));
        }
        let more = r.failed.len().saturating_sub(FAILED_SHOWN_MAX);
        if more > 0 {
            let _ = write!(s, "<br>and {more} more");
        }
        s.push_str("</div>");
    }
    s.push_str("</td>");
}

/// Whether `h` is a relative link (no scheme, not protocol-relative), the
/// only kind a sweep links to. Anything else (`javascript:`, `https://`)
/// is shown as plain text: the label is still there, the link is not.
pub(crate) fn is_relative_href(h: &str) -> bool {
    let head = h.split(['/', '?', '#']).next().unwrap_or("");
    !head.contains(':') && !h.starts_with("//") && !h.starts_with('\\')
}

/// Green to red through amber, by `t` in 0..=1.
fn heat(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        1.0
    };
    let lerp =
        |a: u8, b: u8, u: f64| (f64::from(a) + (f64::from(b) - f64::from(a)) * u).round() as u8;
    if t < 0.5 {
        let u = t * 2.0;
        RGBColor(lerp(44, 240, u), lerp(160, 180, u), lerp(44, 30, u))
    } else {
        let u = (t - 0.5) * 2.0;
        RGBColor(lerp(240, 214, u), lerp(180, 39, u), lerp(30, 40, u))
    }
}

/// Points whose markers are closer than this, in pixels, are drawn as one
/// marker. Identical results are common in a sweep (a limit that never
/// binds gives the same run at every value), and a marker 6 px wide hides
/// any other within a few pixels: one marker with a count and the full
/// list under the chart shows them all, where offsetting them would draw
/// points at values they do not have.
const COINCIDE_PX: i32 = 3;
/// Most point labels drawn on the scatter; the table names every point.
const SCATTER_LABELS_MAX: usize = 20;
const SCATTER_LABEL_CHARS_MAX: usize = 40;
/// An estimate of the label font's mean advance (11 px sans-serif), for
/// keeping labels inside the plot and off each other.
const LABEL_CHAR_PX: i32 = 6;
const LABEL_HEIGHT_PX: i32 = 13;
/// From a point's centre to its label, clear of the front ring (9 px).
const LABEL_OFFSET_PX: i32 = 12;

fn draw_scatter(
    out: &mut String,
    rows: &[SweepRow],
    front: &[usize],
    attackers: bool,
    groups: &mut Vec<Vec<usize>>,
) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::with_string(out, (WIDTH_PX, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let pts: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].cost.is_finite() && rows[i].legit_failure_rate.is_finite())
        .collect();
    let range = |f: &dyn Fn(&SweepRow) -> f64| {
        let (lo, hi) = pts
            .iter()
            .map(|&i| f(&rows[i]))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        if !(lo.is_finite() && hi.is_finite()) {
            (0.0, 1.0)
        } else if hi > lo {
            let pad = (hi - lo) * 0.08;
            (lo - pad, hi + pad)
        } else {
            (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3))
        }
    };
    let (x0, x1) = range(&|r| r.cost);
    let (y0, y1) = range(&|r| r.legit_failure_rate * 100.0);
    let mut cc = ChartBuilder::on(&root)
        .caption("cost vs legit failure rate", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    cc.configure_mesh()
        .x_desc("cost")
        .y_desc("legit failure, %")
        .x_label_formatter(&|v| sig3(*v))
        .y_label_formatter(&|v| sig3(*v))
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(225, 225, 225))
        .label_style(("sans-serif", 12))
        .draw()?;
    // Over every row with attackers, as the page's colour legend is.
    let a_max = attacker_max(rows);
    let shade = |r: &SweepRow| {
        if !(attackers && r.has_attackers) {
            NO_ATTACK_COLOR
        } else {
            heat(if a_max > 0.0 {
                r.attacker_success / a_max
            } else {
                0.0
            })
        }
    };
    let data = |r: &SweepRow| (r.cost, r.legit_failure_rate * 100.0);

    // The 2-D front (cost, failure), as a step line.
    let mut f2: Vec<usize> = pts
        .iter()
        .copied()
        .filter(|&i| {
            !pts.iter().any(|&j| {
                let (a, b) = (&rows[i], &rows[j]);
                b.cost <= a.cost
                    && b.legit_failure_rate <= a.legit_failure_rate
                    && (b.cost < a.cost || b.legit_failure_rate < a.legit_failure_rate)
            })
        })
        .collect();
    f2.sort_by(|&a, &b| rows[a].cost.total_cmp(&rows[b].cost).then(a.cmp(&b)));
    let mut step = Vec::new();
    for (k, &i) in f2.iter().enumerate() {
        let p = data(&rows[i]);
        if k > 0 {
            step.push((p.0, step.last().map_or(p.1, |q: &(f64, f64)| q.1)));
        }
        step.push(p);
    }
    if step.len() > 1 {
        cc.draw_series(std::iter::once(PathElement::new(
            step,
            BLACK.mix(0.35).stroke_width(1),
        )))?;
    }

    // Group points by pixel, greedily in row order (so the same rows give
    // the same groups): a point joins the first group whose first point is
    // within COINCIDE_PX on both axes. The marker sits at that first point.
    let pix: Vec<(i32, i32)> = rows.iter().map(|r| cc.backend_coord(&data(r))).collect();
    let px = |i: usize| pix[i];
    groups.clear();
    for &i in &pts {
        let (x, y) = px(i);
        let near = groups.iter_mut().find(|g| {
            let (gx, gy) = px(g[0]);
            (gx - x).abs() <= COINCIDE_PX && (gy - y).abs() <= COINCIDE_PX
        });
        match near {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    debug_assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), pts.len());
    for g in groups.iter() {
        let p = data(&rows[g[0]]);
        // The worst attacker success in the marker is the one not to miss.
        let worst = g
            .iter()
            .copied()
            .max_by(|&a, &b| {
                let key = |i: usize| {
                    let r = &rows[i];
                    if r.has_attackers && r.attacker_success.is_finite() {
                        r.attacker_success
                    } else {
                        -1.0
                    }
                };
                key(a).total_cmp(&key(b)).then(b.cmp(&a))
            })
            .unwrap_or(g[0]);
        let radius = if g.len() > 1 { 8 } else { 6 };
        cc.draw_series(std::iter::once(Circle::new(
            p,
            radius,
            shade(&rows[worst]).filled(),
        )))?;
        if g.len() > 1 {
            // The count inside the marker, white on its colour.
            cc.draw_series(std::iter::once(
                EmptyElement::at(p)
                    + Text::new(
                        g.len().to_string(),
                        (0, 0),
                        ("sans-serif", 10)
                            .into_font()
                            .style(FontStyle::Bold)
                            .color(&WHITE)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ),
            ))?;
        }
        if g.iter().any(|i| front.contains(i)) {
            cc.draw_series(std::iter::once(Circle::new(
                p,
                radius + 3,
                BLACK.stroke_width(2),
            )))?;
        }
    }

    // Labels for markers holding a front point, front points named first.
    let (xs, ys) = cc.plotting_area().get_pixel_range();
    let mut placed: Vec<(i32, i32, i32, i32)> = Vec::new();
    let mut labelled = 0;
    for g in groups
        .iter()
        .filter(|g| g.iter().any(|i| front.contains(i)))
    {
        if labelled == SCATTER_LABELS_MAX {
            break;
        }
        let mut names: Vec<&str> = g
            .iter()
            .filter(|i| front.contains(i))
            .chain(g.iter().filter(|i| !front.contains(i)))
            .map(|&i| rows[i].label.as_str())
            .collect();
        names.dedup();
        let text = if g.len() > 1 {
            format!("×{} {}", g.len(), names.join(", "))
        } else {
            names.join(", ")
        };
        let text = svg_label(&text, SCATTER_LABEL_CHARS_MAX);
        let w = LABEL_CHAR_PX * i32::try_from(text.chars().count()).unwrap_or(i32::MAX / 8);
        let (x, y) = px(g[0]);
        // Right of the point where it fits, else left of it; beside the
        // point where it fits, else below (near the top) or above.
        let right = (x + LABEL_OFFSET_PX, x + LABEL_OFFSET_PX + w);
        let left = (x - LABEL_OFFSET_PX - w, x - LABEL_OFFSET_PX);
        let mid = (y - LABEL_HEIGHT_PX / 2, y + LABEL_HEIGHT_PX / 2);
        let below = (y + LABEL_OFFSET_PX, y + LABEL_OFFSET_PX + LABEL_HEIGHT_PX);
        let above = (y - LABEL_OFFSET_PX - LABEL_HEIGHT_PX, y - LABEL_OFFSET_PX);
        let inside = |h: (i32, i32), v: (i32, i32)| {
            h.0 >= xs.start && h.1 <= xs.end && v.0 >= ys.start && v.1 <= ys.end
        };
        let free = |h: (i32, i32), v: (i32, i32)| {
            !placed
                .iter()
                .any(|p| h.0 < p.1 && p.0 < h.1 && v.0 < p.3 && p.2 < v.1)
        };
        let spot = [
            (right, mid),
            (left, mid),
            (right, below),
            (left, below),
            (right, above),
            (left, above),
        ]
        .into_iter()
        .find(|&(h, v)| inside(h, v) && free(h, v));
        // No room anywhere: the table and the list under the chart name it.
        let Some((h, v)) = spot else { continue };
        placed.push((h.0, h.1, v.0, v.1));
        labelled += 1;
        root.draw(&Text::new(
            text,
            (h.0, v.0),
            ("sans-serif", 11)
                .into_font()
                .color(&BLACK.mix(0.8))
                .pos(Pos::new(HPos::Left, VPos::Top)),
        ))?;
    }
    root.present()?;
    Ok(())
}
