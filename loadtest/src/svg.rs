//! Hand-written SVG charts: polylines and bars, no plotting crate.

use std::fmt::Write as _;

use crate::report::Report;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 8] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A line chart: named series of (x, y) points.
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<[f64; 2]>)],
) -> String {
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|p| p[0]));
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|p| p[1]));
    let x_max = xs.fold(0.0f64, f64::max).max(1e-9);
    let y_max = ys.fold(0.0f64, f64::max).max(1e-9);
    let mut s = frame(title, x_label, y_label, x_max, y_max);
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x_of(p[0], x_max), y_of(p[1], y_max)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        legend(&mut s, i, name, color);
    }
    s.push_str("</svg>\n");
    s
}

/// A bar chart of named values.
pub fn bars(title: &str, y_label: &str, values: &[(String, f64)]) -> String {
    let y_max = values.iter().map(|v| v.1).fold(0.0f64, f64::max).max(1e-9);
    let mut s = frame(title, "", y_label, 0.0, y_max);
    let n = values.len().max(1) as f64;
    let slot = (W - LEFT - RIGHT) / n;
    for (i, (name, value)) in values.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let y = y_of(*value, y_max);
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
            slot * 0.7,
            (H - BOTTOM - y).max(0.0)
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{value:.2}</text>"#,
            x + slot * 0.35,
            y - 4.0
        );
        legend(&mut s, i, name, color);
    }
    s.push_str("</svg>\n");
    s
}

fn x_of(x: f64, x_max: f64) -> f64 {
    LEFT + x / x_max * (W - LEFT - RIGHT)
}

fn y_of(y: f64, y_max: f64) -> f64 {
    H - BOTTOM - y / y_max * (H - TOP - BOTTOM)
}

fn legend(s: &mut String, i: usize, name: &str, color: &str) {
    let y = TOP + 18.0 * i as f64;
    let x = W - RIGHT + 15.0;
    let _ = writeln!(s, r#"<rect x="{x}" y="{:.1}" width="12" height="12" fill="{color}"/>"#, y);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{:.1}" font-size="12">{}</text>"#,
        x + 18.0,
        y + 10.0,
        escape(name)
    );
}

fn frame(title: &str, x_label: &str, y_label: &str, x_max: f64, y_max: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    let (x0, y0, x1, y1) = (LEFT, H - BOTTOM, W - RIGHT, TOP);
    let _ = writeln!(s, r#"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>"#);
    let _ = writeln!(s, r#"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>"#);
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let y = y_of(y_max * f, y_max);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 - 5.0,
            y + 4.0,
            tick(y_max * f)
        );
        if x_max > 0.0 {
            let x = x_of(x_max * f, x_max);
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
                y0 + 16.0,
                tick(x_max * f)
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        H - 12.0,
        escape(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0,
        escape(y_label)
    );
    s
}

fn tick(v: f64) -> String {
    if v >= 100.0 || v == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

/// The three charts of a report: (file name, SVG).
pub fn charts(report: &Report) -> Vec<(&'static str, String)> {
    let mut cdf = Vec::new();
    for h in &report.heuristics {
        for (ctx, points) in &h.freshness.cdf {
            cdf.push((format!("{} {ctx}", h.heuristic), points.clone()));
        }
    }
    let mut requests: Vec<(String, f64)> = report
        .heuristics
        .iter()
        .map(|h| (h.heuristic.clone(), h.requests.reads_per_device_hour))
        .collect();
    requests.push(("minimum".to_string(), report.theoretical_minimum.reads_per_device_hour));
    let age: Vec<(String, Vec<[f64; 2]>)> = report
        .heuristics
        .iter()
        .map(|h| {
            let series = if h.data_age_bound_keeping.is_empty() {
                &h.data_age
            } else {
                &h.data_age_bound_keeping
            };
            let points = series.iter().map(|a| [f64::from(a.hour) + 1.0, a.mean_s]).collect();
            (format!("{} mean", h.heuristic), points)
        })
        .collect();
    vec![
        (
            "latency-cdf.svg",
            lines(
                "Change-to-observation latency CDF per context",
                "seconds",
                "share of changes",
                &cdf,
            ),
        ),
        ("requests.svg", bars("Data reads per device-hour", "reads / device-hour", &requests)),
        (
            "data-age.svg",
            lines(
                "Age of served data over the day (devices whose quota pays for their bounds)",
                "simulated hour",
                "mean age, seconds",
                &age,
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_documents() {
        let s = lines("t <1>", "x", "y", &[("a".into(), vec![[0.0, 0.0], [1.0, 2.0]])]);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert!(s.contains("<polyline") && s.contains("t &lt;1&gt;"));
        let b = bars("b", "y", &[("x".into(), 3.0), ("y".into(), 1.5)]);
        assert_eq!(b.matches("<rect x=").count(), 4);
    }
}
