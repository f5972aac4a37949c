//! Comparison and sweep pages.

use std::error::Error;
use std::fmt::Write;

use plotters::prelude::*;

use crate::chart::{Line, Marks, TimeChart, WIDTH_PX, palette, render_time_chart};
use crate::escape::{html, svg_label};
use crate::fmt::{num, pct, sig3};
use crate::keys::{Better, Key, Unit, key_numbers, legit_class, show};
use crate::model::{AnnotationKind, RunReport, SweepRow};
use crate::page::{figure, foot, head, hex};
use crate::run::{phase_spans, rate_scale, verdict};

/// Renders variants side by side: a verdict line per variant, the key
/// numbers with deltas against the first variant, and overlaid time series
/// (legit p99, legit offered and admitted, instances in service). Each
/// variant is `(name, report)`; names are escaped.
pub fn render_compare(variants: &[(&str, &RunReport<'_>)]) -> String {
    let title = format!(
        "Rampart comparison: {}",
        variants
            .iter()
            .map(|v| v.0)
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
    for (i, (name, r)) in variants.iter().enumerate() {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{} (seed {}, policy <code>{}</code>)</span>",
            hex(palette(i)),
            html(name),
            r.seed,
            html(r.policy_hash)
        );
    }
    s.push_str("</p>\n");

    // Verdicts, one short block per variant.
    for (name, r) in variants {
        let _ = writeln!(s, "<h3>{}</h3>", html(name));
        let mut v = String::new();
        verdict(&mut v, r.assertions);
        // The run page's verdict has its own h2; here the variant is the heading.
        s.push_str(v.trim_start_matches("<h2>Verdict</h2>\n"));
    }

    key_table(&mut s, variants);
    overlays(&mut s, variants);

    s.push_str("<h2>Reproduce</h2>\n");
    for (name, r) in variants {
        let _ = writeln!(
            s,
            "<h3>{}</h3>\n<pre class=\"cmd\">{}</pre>",
            html(name),
            html(r.command)
        );
    }
    s.push_str("<h2>Effective configuration</h2>\n");
    for (name, r) in variants {
        let _ = writeln!(
            s,
            "<details><summary>{}</summary><pre class=\"config\">{}</pre></details>",
            html(name),
            html(r.config_toml)
        );
    }
    foot(&mut s, None);
    s
}

fn key_table(s: &mut String, variants: &[(&str, &RunReport<'_>)]) {
    let keys: Vec<Vec<Key>> = variants.iter().map(|(_, r)| key_numbers(r)).collect();
    // Rows: every key name in order of first appearance across variants.
    let mut names: Vec<(&str, Unit, Better)> = Vec::new();
    for k in keys.iter().flatten() {
        if !names.iter().any(|n| n.0 == k.name) {
            names.push((&k.name, k.unit, k.better));
        }
    }
    s.push_str("<h2>Key numbers</h2>\n<table class=\"compare\"><thead><tr><th>metric</th>");
    for (i, (name, _)) in variants.iter().enumerate() {
        let _ = write!(s, "<th class=\"n\">{}</th>", html(name));
        if i > 0 {
            let _ = write!(s, "<th class=\"n\">Δ vs {}</th>", html(variants[0].0));
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
    s.push_str("</tbody></table>\n");
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

fn overlays(s: &mut String, variants: &[(&str, &RunReport<'_>)]) {
    s.push_str("<h2>Over time</h2>\n");
    let x_end = variants
        .iter()
        .map(|(_, r)| r.metrics.end.as_secs_f64())
        .fold(0.0, f64::max);
    // Events that are the same story in every variant (surges, attacks,
    // faults, rollouts) are drawn once; scale decisions differ per variant
    // and would be noise when overlaid, so they stay on each run's page.
    let mut events = Vec::new();
    for (_, r) in variants {
        for a in r
            .annotations
            .iter()
            .filter(|a| a.kind != AnnotationKind::Scale)
        {
            if !events.contains(a) {
                events.push(a.clone());
            }
        }
    }
    let marks = Marks::new(&events, phase_spans(variants[0].1.metrics));
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
                .filter_map(|(i, (name, r))| {
                    let m = r.metrics;
                    let col = m.series.column(&field(legit_class(m).unwrap_or("legit")))?;
                    Some(Line {
                        label: if dashed {
                            format!("{name} (offered)")
                        } else {
                            (*name).to_owned()
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

/// Renders a sweep: the Pareto view (cost against legit failure rate,
/// colour by attacker success, the Pareto front ringed) and a table of
/// every variant, sortable by each column with a little inline script. The
/// page works without the script: the table is complete and starts in cost
/// order.
pub fn render_sweep(rows: &[SweepRow]) -> String {
    let mut s = head("Rampart sweep");
    let _ = writeln!(
        s,
        "<h1>Rampart sweep</h1>\n<p class=\"meta\">{} variants</p>",
        rows.len()
    );
    let front = pareto_front(rows);
    s.push_str("<h2>Pareto view</h2>\n");
    let mut svg = String::new();
    let drawn = draw_scatter(&mut svg, rows, &front);
    let svg = match drawn {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"err\">could not draw the scatter: {}</p>",
            html(&e.to_string())
        ),
    };
    figure(
        &mut s,
        &svg,
        "Each point is a variant: cost against legit failure rate; colour from green (no attacker success) to red (highest in the sweep). \
         Ringed points are on the Pareto front over all three (no other variant is at least as good on each and better on one); \
         the line joins the cost/failure front.",
    );

    let a_max = rows
        .iter()
        .map(|r| r.attacker_success)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    s.push_str("<p class=\"legend\">attacker success: ");
    for k in 0..=4 {
        let t = f64::from(k) / 4.0;
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span>",
            hex(heat(t)),
            pct(Some(t * a_max))
        );
    }
    s.push_str("</p>\n");

    // Table columns: label, each parameter (first-appearance order), the three outcomes, front.
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
    s.push_str("<table class=\"sortable sweep\"><thead><tr><th>variant</th>");
    for p in &params {
        let _ = write!(s, "<th>{}</th>", html(p));
    }
    s.push_str("<th class=\"n\">cost</th><th class=\"n\">legit failure</th><th class=\"n\">attacker success</th><th>Pareto</th></tr></thead><tbody>\n");
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
            Some(h) => format!("<a href=\"{}\">{}</a>", html(h), html(&r.label)),
            None => html(&r.label),
        };
        let _ = write!(s, "<tr><td data-v=\"{}\">{label}</td>", html(&r.label));
        for p in &params {
            let v = r
                .params
                .iter()
                .find(|(k, _)| k == p)
                .map_or("", |(_, v)| v.as_str());
            // Numeric-looking values sort numerically in the script.
            let _ = write!(s, "<td data-v=\"{}\">{}</td>", html(v), html(v));
        }
        let on = front.contains(&i);
        let _ = writeln!(
            s,
            "<td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td></tr>",
            dv(r.cost),
            num(Some(r.cost)),
            dv(r.legit_failure_rate),
            pct(Some(r.legit_failure_rate)),
            dv(r.attacker_success),
            pct(Some(r.attacker_success)),
            u8::from(!on),
            if on { "front" } else { "" },
        );
    }
    s.push_str("</tbody></table>\n");
    foot(&mut s, Some(SORT_JS));
    s
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

fn draw_scatter(
    out: &mut String,
    rows: &[SweepRow],
    front: &[usize],
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
    // Over every row, as the page's colour legend is.
    let a_max = rows
        .iter()
        .map(|r| r.attacker_success)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let shade = |v: f64| heat(if a_max > 0.0 { v / a_max } else { 0.0 });

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
        let p = (rows[i].cost, rows[i].legit_failure_rate * 100.0);
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
    for &i in &pts {
        let r = &rows[i];
        let p = (r.cost, r.legit_failure_rate * 100.0);
        cc.draw_series(std::iter::once(Circle::new(
            p,
            6,
            shade(r.attacker_success).filled(),
        )))?;
        if front.contains(&i) {
            cc.draw_series(std::iter::once(Circle::new(p, 9, BLACK.stroke_width(2))))?;
        }
    }
    // Labels for the front only: the table names every point.
    for &i in front.iter().take(20) {
        let r = &rows[i];
        // Offset in pixels from the point, clear of its ring.
        let label = EmptyElement::at((r.cost, r.legit_failure_rate * 100.0))
            + Text::new(
                svg_label(&r.label, 24),
                (11, -4),
                ("sans-serif", 11).into_font().color(&BLACK.mix(0.8)),
            );
        cc.draw_series(std::iter::once(label))?;
    }
    root.present()?;
    Ok(())
}
