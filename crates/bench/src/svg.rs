//! The chart of a run, as SVG text: payments/s against payments per proof, and the latency
//! distributions (cumulative), side by side. No plotting library: lines, dots and labels.

use std::fmt::Write;

use crate::stats::{fmt_num, percentile};

const W: f64 = 960.0;
const H: f64 = 380.0;
const PANEL_W: f64 = 400.0;
const PANEL_H: f64 = 260.0;
const TOP: f64 = 60.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The chart. `per_proof` holds (payments per proof, payments/s or `None` where not measured);
/// `limit` is the one-core sign rate drawn as a reference line; `curves` are latency samples
/// (µs) with a name and a colour.
pub fn chart(
    title: &str,
    per_proof: &[(u64, Option<f64>)],
    limit: Option<f64>,
    curves: &[(&str, &str, &[f64])],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    rate_panel(&mut s, 70.0, per_proof, limit);
    latency_panel(&mut s, 540.0, curves);
    s.push_str("</svg>\n");
    s
}

fn axes(s: &mut String, x0: f64, title: &str, xlabel: &str, ylabel: &str) {
    let (y0, y1) = (TOP, TOP + PANEL_H);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="13">{}</text>"#,
        x0 + PANEL_W / 2.0,
        TOP - 12.0,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<path d="M{x0} {y0} V{y1} H{}" fill="none" stroke="#333"/>"##,
        x0 + PANEL_W
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        x0 + PANEL_W / 2.0,
        y1 + 36.0,
        esc(xlabel)
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
        x0 - 52.0,
        TOP + PANEL_H / 2.0,
        x0 - 52.0,
        TOP + PANEL_H / 2.0,
        esc(ylabel)
    );
}

fn y_ticks(s: &mut String, x0: f64, max: f64, fmt: impl Fn(f64) -> String) {
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = TOP + PANEL_H - PANEL_H * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            r##"<path d="M{} {y} H{}" stroke="#ddd"/>"##,
            x0 + 1.0,
            x0 + PANEL_W
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            x0 - 4.0,
            y + 4.0,
            fmt(v)
        );
    }
}

fn rate_panel(s: &mut String, x0: f64, points: &[(u64, Option<f64>)], limit: Option<f64>) {
    axes(
        s,
        x0,
        "payments/s against payments per proof",
        "payments per proof (log scale)",
        "payments/s",
    );
    let max_v = points
        .iter()
        .filter_map(|p| p.1)
        .chain(limit)
        .fold(1.0f64, f64::max)
        * 1.15;
    y_ticks(s, x0, max_v, |v| fmt_num(Some(v)));
    let kmax = points.iter().map(|p| p.0).max().unwrap_or(1).max(2) as f64;
    let x_of = |k: u64| x0 + 20.0 + (PANEL_W - 40.0) * (k as f64).log2() / kmax.log2();
    let y_of = |v: f64| TOP + PANEL_H - PANEL_H * v / max_v;
    for &(k, _) in points {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{k}</text>"#,
            x_of(k),
            TOP + PANEL_H + 16.0
        );
    }
    if let Some(l) = limit {
        let y = y_of(l);
        let _ = writeln!(
            s,
            r##"<path d="M{} {y} H{}" stroke="#999" stroke-dasharray="5 4"/>"##,
            x0 + 1.0,
            x0 + PANEL_W
        );
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" fill="#666">one core signs {}/s</text>"##,
            x0 + PANEL_W - 4.0,
            y - 5.0,
            fmt_num(Some(l))
        );
    }
    let measured: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|&(k, v)| v.map(|v| (x_of(k), y_of(v))))
        .collect();
    if measured.len() > 1 {
        let d: Vec<String> = measured.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
            d.join(" ")
        );
    }
    for &(k, v) in points {
        match v {
            Some(v) => {
                let _ = writeln!(
                    s,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#1f77b4"><title>{k} per proof: {}/s</title></circle>"##,
                    x_of(k),
                    y_of(v),
                    fmt_num(Some(v))
                );
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                    x_of(k),
                    y_of(v) - 8.0,
                    fmt_num(Some(v))
                );
            }
            None => {
                let y = TOP + PANEL_H - 10.0;
                let _ = writeln!(
                    s,
                    r##"<circle cx="{:.1}" cy="{y}" r="4" fill="none" stroke="#d62728"/>"##,
                    x_of(k)
                );
                let _ = writeln!(
                    s,
                    r##"<text x="{:.1}" y="{}" text-anchor="middle" font-size="10" fill="#d62728">n/a</text>"##,
                    x_of(k),
                    y - 8.0
                );
            }
        }
    }
    if points.iter().any(|p| p.1.is_none()) {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" fill="#d62728" font-size="11">n/a: the node did not take the per_proof field</text>"##,
            x0 + 10.0,
            TOP + 14.0
        );
    }
}

fn latency_panel(s: &mut String, x0: f64, curves: &[(&str, &str, &[f64])]) {
    axes(
        s,
        x0,
        "latency, one payment at a time (cumulative)",
        "µs",
        "share of payments",
    );
    y_ticks(s, x0, 1.0, |v| format!("{:.0}%", v * 100.0));
    let all: Vec<f64> = curves.iter().flat_map(|c| c.2.iter().copied()).collect();
    // The x axis ends at the largest 99.5th percentile, so that a few outliers do not squash
    // the curves; the tail beyond is off the chart (its p99 is in the table).
    let xmax = curves
        .iter()
        .filter_map(|c| percentile(c.2, 99.5))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.05;
    if all.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">no samples</text>"#,
            x0 + PANEL_W / 2.0,
            TOP + PANEL_H / 2.0
        );
        return;
    }
    for i in 0..=4 {
        let v = xmax * f64::from(i) / 4.0;
        let x = x0 + PANEL_W * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{:.0}</text>"#,
            TOP + PANEL_H + 16.0,
            v
        );
    }
    for (n, (name, colour, xs)) in curves.iter().enumerate() {
        let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            continue;
        }
        // At most ~400 points per curve.
        let step = (v.len() / 400).max(1);
        let pts: Vec<String> = v
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i == v.len() - 1)
            .filter(|(_, x)| **x <= xmax)
            .map(|(i, x)| {
                let px = x0 + PANEL_W * x / xmax;
                let py = TOP + PANEL_H - PANEL_H * (i + 1) as f64 / v.len() as f64;
                format!("{px:.1},{py:.1}")
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        let p50 = percentile(&v, 50.0).unwrap_or(0.0);
        let p99 = percentile(&v, 99.0).unwrap_or(0.0);
        let ly = TOP + PANEL_H - 60.0 + 16.0 * n as f64;
        let _ = writeln!(
            s,
            r#"<path d="M{} {} h18" stroke="{colour}" stroke-width="2"/>"#,
            x0 + PANEL_W - 230.0,
            ly - 4.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{ly}">{} (p50 {:.0}, p99 {:.0} µs)</text>"#,
            x0 + PANEL_W - 206.0,
            esc(name),
            p50,
            p99
        );
    }
}

#[cfg(test)]
mod tests {
    use super::chart;

    #[test]
    fn the_chart_is_one_svg_element_with_a_gap_for_missing_points() {
        let pts = [(1, Some(60_000.0)), (2, None), (64, Some(1_500_000.0))];
        let lat = [100.0, 120.0, 150.0, 900.0];
        let svg = chart("t <1>", &pts, Some(70_000.0), &[("unloaded", "#2ca02c", &lat)]);
        assert!(svg.starts_with("<svg ") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.contains("n/a"));
        assert!(svg.contains("t &lt;1&gt;"));
        assert!(svg.contains("p99 900"));
        let empty = chart("t", &[(1, None)], None, &[]);
        assert!(empty.contains("no samples"));
    }
}
