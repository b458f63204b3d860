//! Hand-written SVG line charts (no plotting dependency): throughput versus
//! threads and latency percentiles.

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Stroke colour (any SVG colour).
    pub color: String,
    /// Dashed line (used for baselines).
    pub dashed: bool,
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Optional `(low, high)` error bar per point (same length as `points`).
    pub ranges: Vec<Option<(f64, f64)>>,
}

/// How the y axis is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YScale {
    /// Linear from zero.
    LinearFromZero,
    /// Base-10 logarithmic (all values must be positive).
    Log10,
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Caption of the x axis.
    pub x_label: String,
    /// Caption of the y axis.
    pub y_label: String,
    /// Tick positions (in x units) and their labels; the x range spans them.
    pub x_ticks: Vec<(f64, String)>,
    /// Scale of the y axis.
    pub y_scale: YScale,
    /// Formats a y tick value.
    pub y_format: fn(f64) -> String,
    /// The lines.
    pub series: Vec<Series>,
    /// Draw each point as a bar from the x axis instead of joining the
    /// points (for workloads measured at one thread count, where each
    /// series is one contender at its own x position).
    pub bars: bool,
}

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Colours for contenders: a strong blue family for waitless, red for the
/// lock, muted distinct hues for peers.
pub const WAITLESS_COLORS: [&str; 3] = ["#1f5fd1", "#5b8ff0", "#0b2f7a"];
/// The lock baseline's colour.
pub const MUTEX_COLOR: &str = "#d23c2a";
/// Peers' colours, in order.
pub const PEER_COLORS: [&str; 6] = [
    "#2a9d5b", "#8e44ad", "#e08e0b", "#17a2b8", "#7f8c8d", "#b5651d",
];

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 220.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 56.0;

/// "Nice" tick values covering `0..=max` (or `min..=max`).
fn linear_ticks(max: f64) -> (f64, Vec<f64>) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, vec![0.0, 1.0]);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| s * 5.0 >= max)
        .unwrap_or(10.0 * mag);
    let top = (max / step).ceil() * step;
    let n = (top / step).round() as usize;
    (top, (0..=n).map(|i| i as f64 * step).collect())
}

fn log_ticks(min: f64, max: f64) -> (f64, f64, Vec<f64>) {
    let lo = min.max(1e-9).log10().floor();
    let mut hi = max.max(1e-9).log10().ceil();
    if hi <= lo {
        hi = lo + 1.0;
    }
    let ticks = (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect();
    (lo, hi, ticks)
}

/// Renders the chart as a standalone SVG document.
pub fn render(chart: &LineChart) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let xs: Vec<f64> = chart.x_ticks.iter().map(|t| t.0).collect();
    let (x_min, x_max) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let (x_min, x_max) = if x_min.is_finite() && x_max > x_min {
        (x_min, x_max)
    } else if x_min.is_finite() {
        (x_min - 1.0, x_min + 1.0)
    } else {
        (0.0, 1.0)
    };
    let px = |x: f64| LEFT + 16.0 + (x - x_min) / (x_max - x_min) * (plot_w - 32.0);

    let values: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.1)
                .chain(s.ranges.iter().flatten().flat_map(|r| [r.0, r.1]))
        })
        .filter(|v| v.is_finite())
        .collect();
    let y_max = values.iter().copied().fold(0.0f64, f64::max);
    let y_min_pos = values
        .iter()
        .copied()
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min);

    let (py, y_ticks): (Box<dyn Fn(f64) -> f64>, Vec<f64>) = match chart.y_scale {
        YScale::LinearFromZero => {
            let (top, ticks) = linear_ticks(y_max);
            (
                Box::new(move |y: f64| TOP + plot_h - (y / top) * plot_h),
                ticks,
            )
        }
        YScale::Log10 => {
            let min = if y_min_pos.is_finite() {
                y_min_pos
            } else {
                1.0
            };
            let (lo, hi, ticks) = log_ticks(min, y_max.max(min));
            (
                Box::new(move |y: f64| {
                    let l = y.max(1e-9).log10();
                    TOP + plot_h - (l - lo) / (hi - lo) * plot_h
                }),
                ticks,
            )
        }
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="24" font-size="15" font-weight="600" fill="#222">{}</text>"##,
        xml_escape(&chart.title)
    );
    // Grid and y ticks.
    for &t in &y_ticks {
        let y = py(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            LEFT - 6.0,
            y + 4.0,
            xml_escape(&(chart.y_format)(t))
        );
    }
    // Axes.
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="#444"/>"##,
        TOP + plot_h
    );
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#444"/>"##,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h
    );
    for (x, label) in &chart.x_ticks {
        let x = px(*x);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#444"/>"##,
            TOP + plot_h,
            TOP + plot_h + 5.0
        );
        let _ = writeln!(
            s,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            TOP + plot_h + 19.0,
            xml_escape(label)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333">{}</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0,
        xml_escape(&chart.x_label)
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" fill="#333">{}</text>"##,
        TOP + plot_h / 2.0,
        xml_escape(&chart.y_label)
    );
    // Series.
    for series in &chart.series {
        let color = xml_escape(&series.color);
        for (i, r) in series.ranges.iter().enumerate() {
            if let (Some((lo, hi)), Some(&(x, _))) = (r, series.points.get(i)) {
                let x = px(x);
                let _ = writeln!(
                    s,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{color}" stroke-width="1.5" opacity="0.55"/>"#,
                    py(*lo),
                    py(*hi)
                );
            }
        }
        if chart.bars {
            let half = (plot_w - 32.0) / (chart.x_ticks.len().max(2) as f64 - 1.0) * 0.3;
            for &(x, y) in series.points.iter().filter(|p| p.1.is_finite()) {
                let top = py(y).min(TOP + plot_h);
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{color}" opacity="0.8"><title>{}: {}</title></rect>"#,
                    px(x) - half,
                    2.0 * half,
                    TOP + plot_h - top,
                    xml_escape(&series.name),
                    xml_escape(&(chart.y_format)(y))
                );
            }
            continue;
        }
        let path: Vec<String> = series
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        if path.len() > 1 {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2.2"{} points="{}"/>"#,
                if series.dashed {
                    r#" stroke-dasharray="6 4""#
                } else {
                    ""
                },
                path.join(" ")
            );
        }
        for &(x, y) in series.points.iter().filter(|p| p.1.is_finite()) {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{}: {}</title></circle>"#,
                px(x),
                py(y),
                xml_escape(&series.name),
                xml_escape(&(chart.y_format)(y))
            );
        }
    }
    // Legend.
    let lx = LEFT + plot_w + 18.0;
    for (i, series) in chart.series.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 20.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="3"{}/>"#,
            lx + 22.0,
            xml_escape(&series.color),
            if series.dashed {
                r#" stroke-dasharray="5 3""#
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#222">{}</text>"##,
            lx + 28.0,
            y + 4.0,
            xml_escape(&truncate(&series.name, 26))
        );
    }
    s.push_str("</svg>\n");
    s
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(scale: YScale) -> LineChart {
        LineChart {
            title: "a <b> & \"c\"".into(),
            x_label: "threads".into(),
            y_label: "ops/s".into(),
            x_ticks: vec![(0.0, "1".into()), (1.0, "2".into()), (2.0, "4".into())],
            y_scale: scale,
            y_format: crate::analyzer::human_rate,
            series: vec![Series {
                name: "Mutex<Vec<T>>".into(),
                color: MUTEX_COLOR.into(),
                dashed: true,
                points: vec![(0.0, 10.0), (1.0, 20.0), (2.0, 5.0)],
                ranges: vec![Some((9.0, 11.0)), None, Some((4.0, 6.0))],
            }],
            bars: false,
        }
    }

    #[test]
    fn bars_rise_from_the_axis_to_each_value() {
        for scale in [YScale::LinearFromZero, YScale::Log10] {
            let mut c = chart(scale);
            c.bars = true;
            let svg = render(&c);
            assert_eq!(svg.matches("<rect").count(), 1 + 3, "background + bars");
            assert_eq!(svg.matches("<circle").count(), 0);
            assert!(!svg.contains("<polyline"));
            assert!(!svg.contains("NaN") && !svg.contains("height=\"-"));
        }
    }

    #[test]
    fn output_is_escaped_and_has_every_point() {
        for scale in [YScale::LinearFromZero, YScale::Log10] {
            let svg = render(&chart(scale));
            assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
            assert!(svg.contains("Mutex&lt;Vec&lt;T&gt;&gt;"));
            assert!(!svg.contains("Mutex<Vec"));
            assert_eq!(svg.matches("<circle").count(), 3);
            assert!(svg.trim_end().ends_with("</svg>"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"));
        }
    }

    #[test]
    fn empty_and_flat_charts_still_render() {
        let mut c = chart(YScale::LinearFromZero);
        c.series.clear();
        c.x_ticks.truncate(1);
        let svg = render(&c);
        assert!(!svg.contains("NaN"));
        let mut c = chart(YScale::Log10);
        c.series[0].points = vec![(0.0, 0.0)];
        c.series[0].ranges.clear();
        assert!(!render(&c).contains("NaN"));
    }

    #[test]
    fn linear_ticks_cover_the_maximum() {
        let (top, ticks) = linear_ticks(87.0);
        assert!((87.0..=100.0).contains(&top));
        assert_eq!(ticks.first(), Some(&0.0));
        assert_eq!(ticks.last(), Some(&top));
        assert!(ticks.len() <= 7);
    }
}
