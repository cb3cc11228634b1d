//! The latency plot as hand-written SVG text: one percentile curve per run, the percentile on
//! a "nines" axis (0 %, 90 %, 99 %, 99.9 %, 99.99 %) and the latency on a log axis, with the
//! 5 ms bar drawn across. Pure: series in, text out.

use std::fmt::Write as _;

use super::stats::Latencies;

/// Plot size in SVG user units.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// The x axis runs from 0 to this many nines (4 = 99.99 %).
const NINES_MAX: f64 = 4.0;
/// Points per curve.
const CURVE_POINTS: u32 = 161;
/// Lowest latency the y axis shows, in milliseconds.
const Y_FLOOR_MS: f64 = 0.01;
/// The end-to-end bar: p99 below this many milliseconds.
const BAR_MS: f64 = 5.0;
/// Curve colours, reused in order.
const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// Escapes text for an SVG text node or attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders `series` (label, samples) as an SVG document titled `title`.
#[must_use]
pub(crate) fn render(title: &str, series: &[(String, &Latencies)]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let mut lo_ms = BAR_MS;
    let mut hi_ms = BAR_MS;
    for (_, l) in series {
        if let (Some(min), Some(max)) = (l.quantile_ns(0.0), l.max_ns()) {
            lo_ms = lo_ms.min(super::stats::ms(min));
            hi_ms = hi_ms.max(super::stats::ms(max));
        }
    }
    let y_lo = lo_ms.max(Y_FLOOR_MS).log10().floor();
    let y_hi = hi_ms.max(Y_FLOOR_MS).log10().ceil().max(y_lo + 1.0);
    let x_of = |nines: f64| LEFT + nines / NINES_MAX * plot_w;
    let y_of = |value_ms: f64| {
        let v = value_ms.max(Y_FLOOR_MS).log10().clamp(y_lo, y_hi);
        TOP + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        LEFT + plot_w / 2.0,
        escape(title)
    );
    // Grid and tick labels.
    for (nines, label) in [
        (0.0, "0%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
    ] {
        let x = x_of(nines);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            TOP + plot_h
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            TOP + plot_h + 18.0
        );
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "decade exponents of a latency in ms are small integers"
    )]
    for decade in (y_lo as i32)..=(y_hi as i32) {
        let value = 10f64.powi(decade);
        let y = y_of(value);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{value} ms</text>"#,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" text-anchor="middle" transform="rotate(-90 16 {:.1})">produce → NewOrder latency</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    // The bar.
    let bar_y = y_of(BAR_MS);
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{bar_y:.1}" x2="{:.1}" y2="{bar_y:.1}" stroke="#888" stroke-dasharray="6 4"/>"##,
        LEFT + plot_w
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" fill="#555">bar: p99 &lt; 5 ms</text>"##,
        LEFT + 6.0,
        bar_y - 5.0
    );
    // Curves and legend.
    for (i, (label, latencies)) in series.iter().enumerate() {
        let colour = COLOURS.get(i % COLOURS.len()).copied().unwrap_or("black");
        let mut points = String::new();
        for step in 0..CURVE_POINTS {
            let nines = f64::from(step) * NINES_MAX / f64::from(CURVE_POINTS - 1);
            let q = 1.0 - 10f64.powf(-nines);
            if let Some(ns) = latencies.quantile_ns(q) {
                let _ = write!(
                    points,
                    "{:.1},{:.1} ",
                    x_of(nines),
                    y_of(super::stats::ms(ns))
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.trim_end()
        );
        #[expect(clippy::cast_precision_loss, reason = "a legend row index")]
        let y = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + plot_w + 14.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="2"/>"#,
            lx + 20.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 26.0,
            y + 4.0,
            escape(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_polyline_per_series_with_escaped_labels() {
        let a = Latencies::from_samples((1..=1000).map(|i| i * 1000).collect());
        let b = Latencies::from_samples(vec![2_000_000; 10]);
        let svg = render("e2e <test>", &[("1k/s".into(), &a), ("a&b".into(), &b)]);
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("e2e &lt;test&gt;"));
        assert!(svg.contains("a&amp;b"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn empty_series_still_render() {
        let empty = Latencies::default();
        let svg = render("none", &[("x".into(), &empty)]);
        assert!(svg.contains("<polyline"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
