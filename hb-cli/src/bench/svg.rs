//! A small SVG line chart with a linear x axis and a logarithmic y axis: enough for
//! the detection frontier, without a plotting dependency.

use std::fmt::Write;

pub enum Mark {
    /// A polyline through the points, small dots on them.
    Line,
    /// Big filled circles (operating points).
    Circle,
    /// Big filled triangles.
    Triangle,
}

pub struct Series {
    pub name: String,
    pub color: &'static str,
    pub mark: Mark,
    /// (x, y); y > 0 (values below the axis are drawn on it).
    pub points: Vec<(f64, f64)>,
}

pub struct Chart {
    pub title: String,
    pub subtitle: String,
    pub x_label: String,
    pub y_label: String,
    pub x_max: f64,
    /// Decades of the y axis: 10^lo .. 10^hi.
    pub y_decades: (i32, i32),
    /// Dashed horizontal lines: (y, label).
    pub rules: Vec<(f64, String)>,
    pub series: Vec<Series>,
}

const W: f64 = 760.0;
const H: f64 = 500.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 50.0;

impl Chart {
    fn x(&self, v: f64) -> f64 {
        LEFT + (v / self.x_max).clamp(0.0, 1.0) * (W - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        let (lo, hi) = (f64::from(self.y_decades.0), f64::from(self.y_decades.1));
        let l = if v > 0.0 { v.log10() } else { lo };
        TOP + (1.0 - ((l - lo) / (hi - lo)).clamp(0.0, 1.0)) * (H - TOP - BOTTOM)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(s, r#"<text x="{x0}" y="20" font-size="15" font-weight="bold">{}</text>"#, esc(&self.title));
        let _ = writeln!(s, r##"<text x="{x0}" y="37" fill="#555">{}</text>"##, esc(&self.subtitle));
        // Grid and ticks.
        for d in self.y_decades.0..=self.y_decades.1 {
            let y = self.y(10f64.powi(d));
            let _ = writeln!(s, r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee"/>"##);
            let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">1e{d}</text>"#, x0 - 6.0, y + 4.0);
        }
        let step = nice_step(self.x_max / 8.0);
        let mut v = 0.0;
        while v <= self.x_max + 1e-9 {
            let x = self.x(v);
            let _ = writeln!(s, r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="#eee"/>"##);
            let _ = writeln!(s, r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, y1 + 16.0, trim(v));
            v += step;
        }
        let _ = writeln!(
            s,
            r#"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="black"/>"#,
            x1 - x0,
            y1 - y0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            H - 12.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (y0 + y1) / 2.0,
            esc(&self.y_label)
        );
        for (v, label) in &self.rules {
            let y = self.y(*v);
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#999" stroke-dasharray="5,4"/>"##
            );
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" fill="#777" font-size="10">{}</text>"##,
                x0 + 4.0,
                y - 3.0,
                esc(label)
            );
        }
        // Series and legend.
        for (i, ser) in self.series.iter().enumerate() {
            let pts: Vec<(f64, f64)> = ser.points.iter().map(|&(x, y)| (self.x(x), self.y(y))).collect();
            match ser.mark {
                Mark::Line => {
                    let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                    let _ = writeln!(
                        s,
                        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
                        path.join(" "),
                        ser.color
                    );
                    for (x, y) in &pts {
                        let _ = writeln!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{}"/>"#, ser.color);
                    }
                }
                Mark::Circle => {
                    for (x, y) in &pts {
                        let _ = writeln!(
                            s,
                            r#"<circle cx="{x:.1}" cy="{y:.1}" r="6" fill="{}" stroke="black"/>"#,
                            ser.color
                        );
                    }
                }
                Mark::Triangle => {
                    for (x, y) in &pts {
                        let _ = writeln!(s, r#"<path d="{}" fill="{}" stroke="black"/>"#, triangle(*x, *y), ser.color);
                    }
                }
            }
            let (lx, ly) = (x1 + 14.0, y0 + 10.0 + 20.0 * i as f64);
            match ser.mark {
                Mark::Line => {
                    let _ = writeln!(
                        s,
                        r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"/>"#,
                        lx + 18.0,
                        ser.color
                    );
                }
                Mark::Circle => {
                    let _ = writeln!(
                        s,
                        r#"<circle cx="{}" cy="{ly}" r="6" fill="{}" stroke="black"/>"#,
                        lx + 9.0,
                        ser.color
                    );
                }
                Mark::Triangle => {
                    let _ =
                        writeln!(s, r#"<path d="{}" fill="{}" stroke="black"/>"#, triangle(lx + 9.0, ly), ser.color);
                }
            }
            let _ = writeln!(s, r#"<text x="{}" y="{}">{}</text>"#, lx + 24.0, ly + 4.0, esc(&ser.name));
        }
        s.push_str("</svg>\n");
        s
    }
}

fn triangle(x: f64, y: f64) -> String {
    format!("M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z", x, y - 7.0, x - 6.5, y + 5.0, x + 6.5, y + 5.0)
}

fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.max(1e-12).log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|&s| s >= raw).unwrap_or(10.0 * mag)
}

fn trim(v: f64) -> String {
    let t = format!("{v:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_series_rules_and_clamps_to_the_axes() {
        let chart = Chart {
            title: "t <1>".into(),
            subtitle: String::new(),
            x_label: "T_D p99 (s)".into(),
            y_label: "rate".into(),
            x_max: 2.0,
            y_decades: (-12, 4),
            rules: vec![(1e-3, "target".into())],
            series: vec![
                Series { name: "a".into(), color: "red", mark: Mark::Line, points: vec![(0.5, 1.0), (1.0, 1e-20)] },
                Series { name: "b".into(), color: "blue", mark: Mark::Circle, points: vec![(9.0, 1e9)] },
            ],
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("t &lt;1&gt;") && svg.contains("target") && svg.contains("<polyline"));
        // 1e-20 sits on the bottom axis, 9 s and 1e9 in the top right corner.
        assert!(svg.contains(&format!(r#"cy="{:.1}""#, H - BOTTOM)));
        assert!(svg.contains(&format!(r#"<circle cx="{:.1}" cy="{:.1}" r="6""#, W - RIGHT, TOP)));
    }

    #[test]
    fn steps_are_round_numbers() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(0.9), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
    }
}
