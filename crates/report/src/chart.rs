//! Time-series charts drawn with plotters into SVG strings.
//!
//! Every chart shares one look: a time axis in seconds from the run's start,
//! phases as shaded bands, annotations as vertical lines with their labels
//! in a strip above the plot, and each series as its mean line over a
//! lighter min..max band. The band is what keeps peaks visible after
//! downsampling.
//!
//! Titles and legends are HTML around the SVG, not text inside it: they
//! stay at the page's font size however far a narrow screen scales the
//! drawing down, and a legend never covers data. The SVG keeps only axis
//! text, event labels and phase names, at sizes chosen so that at the
//! smallest width the page lets a chart shrink to (`min-width` in the
//! stylesheet) they still read at about 10 px.

use std::error::Error;
use std::fmt::Write as _;

use plotters::prelude::*;
use rampart_metrics::{PlotColumn, VersionHeatmap};

use crate::downsample::{Span, min_max_per_pixel};
use crate::escape::{html, svg_label};
use crate::fmt::{sig3, time_s};
use crate::model::{Annotation, AnnotationKind};

/// A full-width chart's size in SVG user units. The page shows it at this
/// size where there is room and scales it down (to a floor) where not.
pub(crate) const WIDTH_PX: u32 = 800;
const HEIGHT_PX: u32 = 280;
pub(crate) const FULL: (u32, u32) = (WIDTH_PX, HEIGHT_PX);
/// A small chart, two to a row on a wide page.
pub(crate) const SMALL: (u32, u32) = (560, 230);
const FONT: &str = "sans-serif";
/// Axis text and event labels, as plotters takes them: it writes
/// `size / 1.24` as the SVG font size, so these are about 13.7 and 12.1
/// SVG units.
const TICK_FONT_PX: u32 = 17;
const LABEL_FONT_PX: u32 = 15;
/// The SVG font size plotters writes for a size it is given.
fn svg_font_px(size: u32) -> f64 {
    f64::from(size) / 1.24
}
/// Lanes of event labels above the plot, and each lane's height.
const LABEL_LANES: u32 = 3;
const LANE_PX: u32 = 15;
/// Horizontal space between two labels in one lane.
const LABEL_GAP_PX: i32 = 8;
const LABEL_CHARS_MAX: usize = 32;
/// Frequent kinds (scale decisions, remediations) are labelled only when
/// a chart has at most this many of them.
const FREQUENT_LABELS_MAX: usize = 6;

/// A categorical palette (Tableau 10): distinguishable, colour-blind aware.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(crate) fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The colour of an annotation kind, also used by the page's CSS.
pub(crate) fn kind_color(k: AnnotationKind) -> RGBColor {
    match k {
        AnnotationKind::Surge => RGBColor(31, 119, 180),
        AnnotationKind::Attack => RGBColor(214, 39, 40),
        AnnotationKind::Fault => RGBColor(148, 103, 189),
        AnnotationKind::Rollout => RGBColor(44, 160, 44),
        AnnotationKind::Token => RGBColor(227, 119, 194),
        AnnotationKind::Detection => RGBColor(188, 189, 34),
        AnnotationKind::Remediation => RGBColor(23, 190, 207),
        AnnotationKind::Scale => RGBColor(150, 150, 150),
        AnnotationKind::Other => RGBColor(140, 86, 75),
    }
}

/// What is marked on every time axis: events and phases.
#[derive(Clone, Debug, Default)]
pub(crate) struct Marks {
    /// `(seconds, label, kind)`, sorted by time, then kind, then label.
    pub(crate) events: Vec<(f64, String, AnnotationKind)>,
    /// `(name, start_s, end_s)`.
    pub(crate) phases: Vec<(String, f64, f64)>,
}

impl Marks {
    pub(crate) fn new(annotations: &[Annotation], phases: Vec<(String, f64, f64)>) -> Marks {
        let mut events: Vec<_> = annotations
            .iter()
            .map(|a| {
                (
                    a.at.as_secs_f64(),
                    svg_label(&a.label, LABEL_CHARS_MAX),
                    a.kind,
                )
            })
            .collect();
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)).then(a.1.cmp(&b.1)));
        Marks { events, phases }
    }
}

/// One plotted column.
#[derive(Clone, Debug)]
pub(crate) struct Line<'a> {
    pub(crate) label: String,
    pub(crate) color: RGBColor,
    pub(crate) bucket_end_s: &'a [f64],
    pub(crate) col: &'a PlotColumn,
    /// Multiplies every value, such as `1 / interval` for a per-second rate.
    pub(crate) scale: f64,
    pub(crate) dashed: bool,
}

/// A chart with a time axis.
#[derive(Clone, Debug)]
pub(crate) struct TimeChart<'a> {
    pub(crate) title: String,
    pub(crate) y_desc: String,
    pub(crate) x_end_s: f64,
    pub(crate) lines: Vec<Line<'a>>,
    /// Stack the lines' means as areas (they must share one bucket axis).
    pub(crate) stacked: bool,
    /// The y axis reaches at least this high (1.0 for a utilisation).
    pub(crate) y_floor_max: f64,
}

type DrawResult = Result<(), Box<dyn Error>>;

/// Renders `chart` at full width: its title, the SVG (or an HTML note if
/// plotting failed) and its legend.
pub(crate) fn render_time_chart(chart: &TimeChart<'_>, marks: &Marks) -> String {
    render_time_chart_sized(chart, marks, FULL)
}

/// [`render_time_chart`] at `size` (such as [`SMALL`]).
pub(crate) fn render_time_chart_sized(
    chart: &TimeChart<'_>,
    marks: &Marks,
    size: (u32, u32),
) -> String {
    let mut svg = String::new();
    let result = draw_time_chart(&mut svg, chart, marks, size);
    let mut out = format!("<div class=\"chart-title\">{}</div>\n", html(&chart.title));
    out.push_str(&finish(svg, result, &chart.title));
    out.push_str(&legend_html(&chart.lines, chart.stacked));
    out
}

/// The series legend as HTML: a line swatch per series (dashed where the
/// series is), or a filled square for stacked areas.
fn legend_html(lines: &[Line<'_>], stacked: bool) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut s = String::from("<p class=\"legend\">");
    for l in lines {
        let c = crate::page::hex(l.color);
        let swatch = if stacked {
            format!("<i style=\"background:{c}\"></i>")
        } else {
            let style = if l.dashed { "dashed" } else { "solid" };
            format!("<i class=\"ln\" style=\"border-top:3px {style} {c}\"></i>")
        };
        let _ = write!(s, "<span>{swatch}{}</span>", html(&l.label));
    }
    s.push_str("</p>\n");
    s
}

/// Renders the policy-version heatmap: title and SVG.
pub(crate) fn render_heatmap(h: &VersionHeatmap, x_end_s: f64, marks: &Marks) -> String {
    let mut svg = String::new();
    let result = draw_heatmap(&mut svg, h, x_end_s, marks);
    let mut out = String::from("<div class=\"chart-title\">Policy version per instance</div>\n");
    out.push_str(&finish(svg, result, "policy versions"));
    out
}

fn finish(svg: String, result: DrawResult, what: &str) -> String {
    match result {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"err\">could not draw {}: {}</p>",
            crate::escape::html(what),
            crate::escape::html(&e.to_string())
        ),
    }
}

fn scaled(v: Option<f64>, k: f64) -> Option<f64> {
    v.map(|x| x * k).filter(|x| x.is_finite())
}

/// The x axis: its range in display units and the unit in seconds. Minutes
/// or hours for long runs, so that plotters' round tick values land on round
/// times (10m, 20m) rather than on 500 s.
fn x_axis(x_end_s: f64) -> ((f64, f64), f64) {
    if !(x_end_s.is_finite() && x_end_s > 0.0) {
        return ((0.0, 1.0), 1.0);
    }
    let unit_s = if x_end_s > 3.0 * 3600.0 {
        3600.0
    } else if x_end_s > 180.0 {
        60.0
    } else {
        1.0
    };
    ((0.0, x_end_s / unit_s), unit_s)
}

impl Marks {
    /// The same marks with times in `unit_s` units.
    fn in_units(&self, unit_s: f64) -> Marks {
        Marks {
            events: self
                .events
                .iter()
                .map(|(t, l, k)| (t / unit_s, l.clone(), *k))
                .collect(),
            phases: self
                .phases
                .iter()
                .map(|(n, a, b)| (n.clone(), a / unit_s, b / unit_s))
                .collect(),
        }
    }
}

/// The y range that holds every raw bucket (so also every merged span).
fn y_range(chart: &TimeChart<'_>) -> (f64, f64) {
    let mut lo: f64 = 0.0;
    let mut hi: f64 = chart.y_floor_max;
    if chart.stacked {
        let n = chart
            .lines
            .iter()
            .map(|l| l.col.mean.len())
            .max()
            .unwrap_or(0);
        for i in 0..n {
            let sum: f64 = chart
                .lines
                .iter()
                .filter_map(|l| scaled(l.col.mean.get(i).copied().flatten(), l.scale))
                .map(|v| v.max(0.0))
                .sum();
            hi = hi.max(sum);
        }
    } else {
        for l in &chart.lines {
            for v in l.col.max.iter().chain(&l.col.min) {
                if let Some(v) = scaled(*v, l.scale) {
                    hi = hi.max(v);
                    lo = lo.min(v);
                }
            }
        }
    }
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        hi = lo + 1.0;
    }
    // Headroom so the top peak is not hidden under the frame.
    (lo, hi + (hi - lo) * 0.06)
}

/// Height of the strip above the plot that holds event labels: none when
/// nothing is marked.
fn label_strip_px(marks: &Marks) -> u32 {
    if marks.events.is_empty() {
        8
    } else {
        LABEL_LANES * LANE_PX + 6
    }
}

fn draw_time_chart(
    out: &mut String,
    chart: &TimeChart<'_>,
    marks: &Marks,
    size: (u32, u32),
) -> DrawResult {
    let root = SVGBackend::with_string(out, size).into_drawing_area();
    root.fill(&WHITE)?;
    let ((x0, x1), unit_s) = x_axis(chart.x_end_s);
    let marks = &marks.in_units(unit_s);
    let (y0, y1) = y_range(chart);
    let mut cc = ChartBuilder::on(&root)
        .margin_left(6)
        .margin_right(18)
        .margin_bottom(4)
        .margin_top(label_strip_px(marks))
        .x_label_area_size(34)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let x_ticks = if size.0 < WIDTH_PX { 6 } else { 10 };
    cc.configure_mesh()
        .x_labels(x_ticks)
        .y_labels(6)
        .x_label_formatter(&|x| time_s(*x * unit_s))
        .y_label_formatter(&|y| sig3(*y))
        .y_desc(svg_label(&chart.y_desc, 40))
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(225, 225, 225))
        .label_style((FONT, TICK_FONT_PX))
        .axis_desc_style((FONT, TICK_FONT_PX))
        .draw()?;
    draw_phases(&mut cc, marks, (x0, x1), (y0, y1))?;

    let pixels = cc.plotting_area().dim_in_pixel().0 as usize;
    let spans: Vec<Vec<Option<Span>>> = chart
        .lines
        .iter()
        .map(|l| {
            let k = l.scale;
            let m = |v: &[Option<f64>]| v.iter().map(|x| scaled(*x, k)).collect::<Vec<_>>();
            let ends: Vec<f64> = l.bucket_end_s.iter().map(|t| t / unit_s).collect();
            min_max_per_pixel(
                &ends,
                &m(&l.col.min),
                &m(&l.col.max),
                &m(&l.col.mean),
                (x0, x1),
                pixels,
            )
        })
        .collect();

    let same_axis = spans.windows(2).all(|w| w[0].len() == w[1].len());
    if chart.stacked && same_axis {
        draw_stacked(&mut cc, chart, &spans)?;
    } else {
        for (l, s) in chart.lines.iter().zip(&spans) {
            draw_line(&mut cc, l, s)?;
        }
    }
    draw_events(&root, &mut cc, marks, (x0, x1), (y0, y1))?;
    root.present()?;
    Ok(())
}

type Cc<'b, 'o> = ChartContext<
    'b,
    SVGBackend<'o>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// Contiguous runs of spans with data; a gap (`None`) ends a run.
fn runs(s: &[Option<Span>]) -> Vec<Vec<Span>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for x in s {
        match x {
            Some(sp) => cur.push(*sp),
            None if cur.is_empty() => {}
            None => out.push(std::mem::take(&mut cur)),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn draw_line(cc: &mut Cc<'_, '_>, l: &Line<'_>, spans: &[Option<Span>]) -> DrawResult {
    let color = l.color;
    for run in runs(spans) {
        // The min..max envelope, only where some column has spread (a flat
        // one is invisible and would only add bytes). It is one path that
        // zigzags min, max, max, min through the columns: every column gets
        // a vertical stroke at least a pixel wide, so a one-interval spike
        // shows at full height, which a filled polygon would thin to nothing.
        if run.iter().any(|s| s.max > s.min) {
            let mut zig: Vec<(f64, f64)> = Vec::with_capacity(2 * run.len());
            for (i, s) in run.iter().enumerate() {
                if i % 2 == 0 {
                    zig.extend([(s.t_s, s.min), (s.t_s, s.max)]);
                } else {
                    zig.extend([(s.t_s, s.max), (s.t_s, s.min)]);
                }
            }
            cc.draw_series(std::iter::once(PathElement::new(
                zig,
                color.mix(0.3).stroke_width(1),
            )))?;
        }
        let pts: Vec<(f64, f64)> = run.iter().map(|s| (s.t_s, s.mean)).collect();
        // A dashed series is drawn as wide as a solid one: it often lies
        // on top of another (completed on admitted), and the gaps in its
        // dashes are what let the series under it show.
        let style = color.stroke_width(2);
        if l.dashed {
            cc.draw_series(DashedLineSeries::new(pts, 7, 5, style))?;
        } else if run.len() == 1 {
            cc.draw_series(std::iter::once(Circle::new(pts[0], 2, style.filled())))?;
        } else {
            cc.draw_series(LineSeries::new(pts, style))?;
        }
    }
    Ok(())
}

fn draw_stacked(
    cc: &mut Cc<'_, '_>,
    chart: &TimeChart<'_>,
    spans: &[Vec<Option<Span>>],
) -> DrawResult {
    let n = spans.first().map_or(0, Vec::len);
    let mut base: Vec<f64> = vec![0.0; n];
    let ts: Vec<Option<f64>> = (0..n)
        .map(|i| spans.iter().find_map(|s| s[i].map(|sp| sp.t_s)))
        .collect();
    for (l, s) in chart.lines.iter().zip(spans) {
        let top: Vec<f64> = (0..n)
            .map(|i| base[i] + s[i].map_or(0.0, |sp| sp.mean.max(0.0)))
            .collect();
        let mut poly: Vec<(f64, f64)> = Vec::with_capacity(2 * n);
        for i in 0..n {
            if let Some(t) = ts[i] {
                poly.push((t, top[i]));
            }
        }
        for i in (0..n).rev() {
            if let Some(t) = ts[i] {
                poly.push((t, base[i]));
            }
        }
        cc.draw_series(std::iter::once(Polygon::new(
            poly,
            l.color.mix(0.75).filled(),
        )))?;
        base = top;
    }
    Ok(())
}

fn draw_phases(cc: &mut Cc<'_, '_>, marks: &Marks, x: (f64, f64), y: (f64, f64)) -> DrawResult {
    for (i, (name, a, b)) in marks.phases.iter().enumerate() {
        let (a, b) = (a.clamp(x.0, x.1), b.clamp(x.0, x.1));
        if b.partial_cmp(&a) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let c = palette(i + 4);
        cc.draw_series(std::iter::once(Rectangle::new(
            [(a, y.0), (b, y.1)],
            c.mix(0.07).filled(),
        )))?;
        cc.draw_series(std::iter::once(Text::new(
            svg_label(name, 24),
            // At the bottom, so event labels (from the top) do not cover it.
            (a, y.0),
            (FONT, LABEL_FONT_PX).into_font().color(&c.mix(0.9)).pos(
                plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Bottom,
                ),
            ),
        )))?;
    }
    Ok(())
}

/// Vertical lines for every event (one per pixel column and kind) inside
/// the plot, and as many labels as fit in the strip above it: rare kinds
/// first, then in time order, each in the lowest lane where it overlaps no
/// other label. Labels run right from their line, or left where that would
/// pass the plot's right edge, so none is cut off and none covers data.
fn draw_events(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    cc: &mut Cc<'_, '_>,
    marks: &Marks,
    x: (f64, f64),
    y: (f64, f64),
) -> DrawResult {
    let inside = |t: f64| t >= x.0 && t <= x.1;
    let pxs: Vec<i32> = marks
        .events
        .iter()
        .map(|e| cc.backend_coord(&(e.0, y.0)).0)
        .collect();
    let mut drawn: Vec<(i32, AnnotationKind)> = Vec::new();
    let mut lines = Vec::new();
    for ((t, _, kind), &p) in marks.events.iter().zip(&pxs) {
        if !inside(*t) || drawn.contains(&(p, *kind)) {
            continue;
        }
        drawn.push((p, *kind));
        // Frequent kinds are faint, so they do not hide data.
        let alpha = if kind.is_frequent() { 0.3 } else { 0.8 };
        lines.push(PathElement::new(
            vec![(*t, y.0), (*t, y.1)],
            kind_color(*kind).mix(alpha).stroke_width(1),
        ));
    }
    cc.draw_series(lines)?;

    let (xr, yr) = cc.plotting_area().get_pixel_range();
    let count = |k: AnnotationKind| {
        marks
            .events
            .iter()
            .filter(|e| e.2 == k && inside(e.0))
            .count()
    };
    let mut order: Vec<usize> = (0..marks.events.len())
        .filter(|&i| {
            let (t, label, kind) = &marks.events[i];
            inside(*t)
                && !label.is_empty()
                && (!kind.is_frequent() || count(*kind) <= FREQUENT_LABELS_MAX)
        })
        .collect();
    // Stable: ties stay in time order.
    order.sort_by_key(|&i| marks.events[i].2.is_frequent());
    let mut lanes: Vec<Vec<(i32, i32)>> = vec![Vec::new(); LABEL_LANES as usize];
    let right_edge = xr.end + 12;
    for i in order {
        let (_, label, kind) = &marks.events[i];
        let p = pxs[i];
        // A generous estimate of the text's width, so labels never touch.
        let w = (label.chars().count() as f64 * svg_font_px(LABEL_FONT_PX) * 0.6).ceil() as i32;
        let (a, b) = if p + 3 + w <= right_edge {
            (p + 3, p + 3 + w)
        } else {
            ((p - 3 - w).max(0), p - 3)
        };
        let Some(lane) = lanes.iter().position(|placed| {
            placed
                .iter()
                .all(|&(c, d)| b + LABEL_GAP_PX <= c || d + LABEL_GAP_PX <= a)
        }) else {
            continue;
        };
        lanes[lane].push((a, b));
        let base_y = yr.start - 3 - lane as i32 * LANE_PX as i32;
        let style = (FONT, LABEL_FONT_PX)
            .into_font()
            .color(&kind_color(*kind).mix(0.95))
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Bottom,
            ));
        root.draw(&Text::new(label.clone(), (a, base_y), style))?;
        // A tick from the label's lane down to the plot ties it to its line.
        root.draw(&PathElement::new(
            vec![(p, base_y - 2), (p, yr.start)],
            kind_color(*kind).mix(0.5).stroke_width(1),
        ))?;
    }
    Ok(())
}

fn draw_heatmap(out: &mut String, h: &VersionHeatmap, x_end_s: f64, marks: &Marks) -> DrawResult {
    let rows = h.instances.len();
    let row_px: u32 = if rows == 0 {
        12
    } else {
        (480 / rows as u32).clamp(2, 14)
    };
    let ((x0, x1), unit_s) = x_axis(x_end_s);
    let marks = &marks.in_units(unit_s);
    let strip = label_strip_px(marks);
    let height = 50 + strip + row_px * rows.max(1) as u32;
    let root = SVGBackend::with_string(out, (WIDTH_PX, height)).into_drawing_area();
    root.fill(&WHITE)?;
    // Row r is centred on y = r, top row first, so tick labels at integers
    // name rows.
    let n = rows.max(1) as f64;
    let (y0, y1) = (-0.5, n - 0.5);
    let ids: Vec<u32> = h.instances.iter().map(|r| r.instance).collect();
    let mut cc = ChartBuilder::on(&root)
        .margin_left(6)
        .margin_right(18)
        .margin_bottom(4)
        .margin_top(strip)
        .x_label_area_size(34)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let label_row = |y: &f64| {
        let r = (n - 1.0 - y).round();
        if r >= 0.0 && (r as usize) < ids.len() && (n - 1.0 - y - r).abs() < 1e-9 {
            format!("#{}", ids[r as usize])
        } else {
            String::new()
        }
    };
    cc.configure_mesh()
        .x_labels(10)
        .y_labels(rows.clamp(1, 16))
        .x_label_formatter(&|x| time_s(*x * unit_s))
        .y_label_formatter(&label_row)
        .y_desc("instance")
        .disable_y_mesh()
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(225, 225, 225))
        .label_style((FONT, TICK_FONT_PX))
        .axis_desc_style((FONT, TICK_FONT_PX))
        .draw()?;

    let versions = distinct_versions(h);
    let mut rects = Vec::new();
    for (r, row) in h.instances.iter().enumerate() {
        // Run-length: consecutive buckets with the same cell become one
        // rectangle, so a stable fleet costs a few elements, not thousands.
        let mut i = 0;
        while i < row.versions.len().min(h.bucket_end_s.len()) {
            let cell = row.versions[i];
            let mut j = i + 1;
            while j < row.versions.len().min(h.bucket_end_s.len()) && row.versions[j] == cell {
                j += 1;
            }
            if let Some([lo, hi]) = cell {
                let start = if i == 0 {
                    x0
                } else {
                    h.bucket_end_s[i - 1] / unit_s
                };
                let end = h.bucket_end_s[j - 1] / unit_s;
                let color = version_color(&versions, lo, hi);
                let y = n - 1.0 - r as f64;
                rects.push(Rectangle::new(
                    [(start, y - 0.45), (end, y + 0.45)],
                    color.filled(),
                ));
            }
            i = j;
        }
    }
    cc.draw_series(rects)?;
    draw_phases(&mut cc, marks, (x0, x1), (y0, y1))?;
    draw_events(&root, &mut cc, marks, (x0, x1), (y0, y1))?;
    root.present()?;
    Ok(())
}

/// Every version seen in the heatmap, ascending.
pub(crate) fn distinct_versions(h: &VersionHeatmap) -> Vec<u32> {
    let mut v: Vec<u32> = h
        .instances
        .iter()
        .flat_map(|r| r.versions.iter().flatten().flat_map(|c| [c[0], c[1]]))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Colour of a cell: one colour per version; a bucket in which an instance
/// changed version (lo != hi) is drawn in the mixed colour.
pub(crate) fn version_color(versions: &[u32], lo: u32, hi: u32) -> RGBColor {
    if lo != hi {
        return MIXED_COLOR;
    }
    let rank = versions.binary_search(&hi).unwrap_or(0);
    // Newest last in the palette order we show: the newest version is
    // always green so "all green" reads as "converged".
    let from_newest = versions.len().saturating_sub(1).saturating_sub(rank);
    VERSION_COLORS[from_newest.min(VERSION_COLORS.len() - 1)]
}

pub(crate) const MIXED_COLOR: RGBColor = RGBColor(40, 40, 40);
pub(crate) const VERSION_COLORS: [RGBColor; 6] = [
    RGBColor(44, 160, 44),
    RGBColor(255, 187, 120),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
