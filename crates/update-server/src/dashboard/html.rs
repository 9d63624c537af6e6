//! HTML building blocks: escaping, links, the page frame and the failure-rate chart (inline
//! SVG drawn here, so the browser runs no script). Every text that reaches a page goes through
//! [`esc`]; device ids, versions, event reasons and token names are untrusted.

use std::fmt::Write as _;

use crate::operator::Operator;

/// `text` with `& < > " '` replaced by entities: safe in element content and in quoted
/// attribute values.
#[must_use]
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `segment` percent-encoded for one URL path segment (everything but unreserved characters).
#[must_use]
pub fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A whole page: the navigation, who is logged in, a logout form (with the CSRF token) and
/// `body`. `refresh_secs` adds a `<meta http-equiv="refresh">` (pages that change on their own).
#[must_use]
pub fn page(title: &str, who: Option<(&Operator, &str)>, refresh_secs: Option<u32>, body: &str) -> String {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(out, "<title>{} · update-server</title>", esc(title));
    out.push_str("<link rel=\"stylesheet\" href=\"/dashboard/static/style.css\">");
    if let Some(secs) = refresh_secs {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{secs}\">");
    }
    out.push_str("</head><body><header><nav><strong>update-server</strong>");
    if let Some((operator, csrf)) = who {
        out.push_str(
            " <a href=\"/dashboard\">Fleet</a> <a href=\"/dashboard/releases\">Releases</a> \
             <a href=\"/dashboard/deployments\">Deployments</a>",
        );
        let _ = write!(
            out,
            "<span class=\"who\">{} ({}) <form method=\"post\" action=\"/dashboard/logout\" class=\"inline\">{}\
             <button type=\"submit\" id=\"logout\">Log out</button></form></span>",
            esc(&operator.name),
            operator.role.as_str(),
            csrf_field(csrf)
        );
    }
    let _ = writeln!(out, "</nav></header><main><h1>{}</h1>{body}</main></body></html>", esc(title));
    out
}

/// The hidden CSRF field every form carries.
#[must_use]
pub fn csrf_field(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(token))
}

/// One point of the failure-rate chart: seconds since the deployment started, and the
/// percentage of attempting devices that failed so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePoint {
    /// Seconds since the deployment was created.
    pub secs: i64,
    /// Failed / attempted so far, in percent.
    pub percent: f64,
}

/// The failure rate over time as an SVG line chart with the threshold as a dashed line.
#[must_use]
pub fn failure_chart(points: &[RatePoint], threshold_percent: u8) -> String {
    const W: f64 = 600.0;
    const H: f64 = 200.0;
    const PAD: f64 = 30.0;
    let span = points.last().map_or(1, |p| p.secs.max(1));
    #[allow(clippy::cast_precision_loss, reason = "seconds of a deployment fit an f64 exactly enough for a chart")]
    let x = |secs: i64| PAD + (secs as f64 / span as f64) * (W - 2.0 * PAD);
    let y = |percent: f64| H - PAD - percent.clamp(0.0, 100.0) / 100.0 * (H - 2.0 * PAD);
    let mut out = format!(
        "<svg id=\"failure-chart\" class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"failure rate over time\"><rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" class=\"bg\"/>"
    );
    for pct in [0.0, 50.0, 100.0] {
        let _ = write!(
            out,
            "<line x1=\"{PAD}\" x2=\"{}\" y1=\"{y0}\" y2=\"{y0}\" class=\"grid\"/><text x=\"2\" y=\"{}\">{pct}%</text>",
            W - PAD,
            y(pct) + 4.0,
            y0 = y(pct),
        );
    }
    let t = y(f64::from(threshold_percent));
    let _ = write!(
        out,
        "<line x1=\"{PAD}\" x2=\"{}\" y1=\"{t}\" y2=\"{t}\" class=\"threshold\"/><text x=\"{}\" y=\"{}\" class=\"threshold-label\">threshold {threshold_percent}%</text>",
        W - PAD,
        W - PAD - 90.0,
        t - 4.0
    );
    if points.is_empty() {
        let _ = write!(out, "<text x=\"{}\" y=\"{}\">no attempts yet</text>", W / 2.0 - 40.0, H / 2.0);
    } else {
        let mut line = String::new();
        let mut prev: Option<f64> = None;
        for p in points {
            // A step chart: the rate holds until the next event changes it.
            if let Some(prev) = prev {
                let _ = write!(line, "{:.1},{:.1} ", x(p.secs), y(prev));
            }
            let _ = write!(line, "{:.1},{:.1} ", x(p.secs), y(p.percent));
            prev = Some(p.percent);
        }
        let _ = write!(out, "<polyline points=\"{}\" class=\"rate\"/>", line.trim_end());
        let last = points[points.len() - 1];
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" class=\"rate-dot\"/><text x=\"{PAD}\" y=\"{}\">after {} s: {:.1}%</text>",
            x(last.secs),
            y(last.percent),
            H - 8.0,
            last.secs,
            last.percent
        );
    }
    out.push_str("</svg>");
    out
}

/// The dashboard's style sheet (served from `/dashboard/static/style.css`, so the pages need
/// no inline style and the content security policy can forbid it).
pub const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1em}header a{color:#cfe0ff;margin-left:1em}
.who{float:right}.inline{display:inline}main{padding:1em 2em}
table{border-collapse:collapse;background:#fff;margin:.5em 0 1.5em}th,td{border:1px solid #d5d9e0;padding:.3em .6em;text-align:left}
th{background:#eef1f5}.failing{color:#b3261e;font-weight:bold}.ok{color:#1e7b34}.offline{color:#777}
.state-paused{color:#b06000;font-weight:bold}.state-aborted{color:#b3261e}.state-running{color:#1e7b34}
.bar{display:inline-block;height:.8em;background:#d5d9e0;width:12em;position:relative}
.bar span{display:block;height:100%;background:#3a7bd5}.bar span.fail{background:#b3261e;position:absolute;top:0}
.chart .bg{fill:#fff}.chart .grid{stroke:#e3e6ea}.chart .threshold{stroke:#b3261e;stroke-dasharray:6 4}
.chart .rate{fill:none;stroke:#3a7bd5;stroke-width:2}.chart .rate-dot{fill:#3a7bd5}.chart text{font-size:11px;fill:#555}
.error{background:#fde8e7;border:1px solid #b3261e;padding:.5em}.notice{background:#fff4e0;border:1px solid #b06000;padding:.5em}
form.actions{display:inline-block;margin-right:.5em}label{display:block;margin:.3em 0}
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<script>alert(\"x\")</script>&'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(path_segment("dev 1/<a>"), "dev%201%2F%3Ca%3E");
        assert_eq!(path_segment("device-0001"), "device-0001");
    }

    #[test]
    fn chart() {
        let svg = failure_chart(&[RatePoint { secs: 0, percent: 0.0 }, RatePoint { secs: 10, percent: 100.0 }], 20);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("threshold 20%") && svg.contains("after 10 s: 100.0%"), "{svg}");
        assert!(failure_chart(&[], 5).contains("no attempts yet"));
    }
}
