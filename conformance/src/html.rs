//! `report.html`: one self-contained page (no external assets) with the verdict, per-suite bars,
//! gates, checklists, plots of error per layer for model cases, and throughput beside the peer
//! figures recorded in `goldens/perf/peers.yaml`. Charts are inline SVG drawn here.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::case::{Outcome, Series};
use crate::gates::Status;
use crate::report::Report;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peer {
    pub peer: String,
    pub machine: String,
    pub model: String,
    pub metric: String,
    pub tok_s: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Peers {
    #[serde(default)]
    pub peers: Vec<Peer>,
}

impl Peers {
    /// Load `goldens/perf/peers.yaml`; a missing file gives no peers.
    pub fn load(path: &Path) -> crate::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(t) => serde_norway::from_str(&t)
                .map_err(|e| crate::HarnessError::CaseFile { path: path.into(), message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Peers::default()),
            Err(e) => Err(crate::HarnessError::Io { path: path.into(), source: e }),
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const GREEN: &str = "#2e7d32";
const RED: &str = "#c62828";
const GREY: &str = "#9e9e9e";

/// Horizontal stacked bars: pass / fail / not run per suite × backend.
fn suite_bars(r: &Report) -> String {
    let row_h = 26.0;
    let label_w = 170.0;
    let bar_w = 520.0;
    let h = row_h * r.suites.len() as f64 + 30.0;
    let max = r.suites.iter().map(|s| s.counts.total).max().unwrap_or(1).max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{h}" role="img" aria-label="cases per suite">"#,
        label_w + bar_w + 60.0
    );
    for (i, x) in r.suites.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let c = &x.counts;
        let _ =
            write!(s, r#"<text x="0" y="{}" font-size="13">{} · {}</text>"#, y + 16.0, esc(&x.suite), x.backend.name());
        let mut at = label_w;
        for (n, color, what) in [(c.pass, GREEN, "pass"), (c.fail, RED, "fail"), (c.not_run, GREY, "not run")] {
            if n == 0 {
                continue;
            }
            let w = bar_w * n as f64 / max;
            let _ = write!(
                s,
                r#"<rect x="{at:.1}" y="{y}" width="{w:.1}" height="{}" fill="{color}"><title>{n} {what}</title></rect>"#,
                row_h - 6.0
            );
            at += w;
        }
        let _ = write!(s, r#"<text x="{:.1}" y="{}" font-size="12">{}/{}</text>"#, at + 6.0, y + 16.0, c.pass, c.total);
    }
    s.push_str("</svg>");
    s
}

/// A line chart with a log10 y axis (errors span decades) and an optional threshold line.
pub fn line_chart(series: &Series) -> String {
    let (w, h, l, b, t, rgt) = (560.0, 260.0, 60.0, 40.0, 20.0, 20.0);
    let pts: Vec<[f64; 2]> = series.points.iter().copied().filter(|p| p[0].is_finite() && p[1].is_finite()).collect();
    let pos = |v: f64| if v > 0.0 { v.log10() } else { -12.0 };
    let ys: Vec<f64> = pts.iter().map(|p| pos(p[1])).chain(series.threshold.map(pos)).collect();
    let (mut y0, mut y1) = ys.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if !(y0.is_finite() && y1.is_finite()) || y0 == f64::MAX {
        y0 = -1.0;
        y1 = 0.0;
    }
    y0 = y0.floor();
    y1 = y1.ceil().max(y0 + 1.0);
    let (x0, x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
    let (x0, x1) = if x0 < x1 { (x0, x1) } else { (0.0, 1.0) };
    let px = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - rgt);
    let py = |y: f64| t + (y1 - y) / (y1 - y0) * (h - t - b);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{}">"#,
        esc(&series.name)
    );
    let _ = write!(
        s,
        r##"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="#bbb"/>"##,
        w - l - rgt,
        h - t - b
    );
    let mut e = y0 as i64;
    while e <= y1 as i64 {
        let y = py(e as f64);
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">1e{e}</text>"##,
            w - rgt,
            l - 4.0,
            y + 4.0
        );
        e += 1;
    }
    if let Some(th) = series.threshold {
        let y = py(pos(th));
        let _ = write!(
            s,
            r#"<line x1="{l}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{RED}" stroke-dasharray="5,4"/><text x="{}" y="{:.1}" font-size="11" fill="{RED}" text-anchor="end">threshold {th:e}</text>"#,
            w - rgt,
            w - rgt - 4.0,
            y - 4.0
        );
    }
    let path: Vec<String> = pts.iter().map(|p| format!("{:.1},{:.1}", px(p[0]), py(pos(p[1])))).collect();
    let _ = write!(s, r##"<polyline fill="none" stroke="#1565c0" stroke-width="2" points="{}"/>"##, path.join(" "));
    for p in &pts {
        let over = series.threshold.is_some_and(|th| p[1] > th);
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{} = {}: {:e}</title></circle>"##,
            px(p[0]),
            py(pos(p[1])),
            if over { RED } else { "#1565c0" },
            esc(&series.x_label),
            p[0],
            p[1]
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" font-size="12" text-anchor="middle">{}</text><text x="14" y="{:.1}" font-size="12" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text></svg>"#,
        (l + w - rgt) / 2.0,
        h - 8.0,
        esc(&series.x_label),
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
        esc(&series.y_label)
    );
    s
}

fn status_color(s: Status) -> &'static str {
    match s {
        Status::Green => GREEN,
        Status::Red => RED,
        Status::Incomplete => GREY,
    }
}

pub fn render(r: &Report, peers: &Peers) -> String {
    let t = &r.totals;
    let (verdict, color) = if t.fail > 0 {
        ("FAIL", RED)
    } else if t.not_run > 0 {
        ("INCOMPLETE", GREY)
    } else {
        ("PASS", GREEN)
    };
    let mut s = String::from(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>orcd-gate report</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px}
th{background:#f5f5f5}.pill{color:#fff;padding:2px 8px;border-radius:10px;font-weight:600}
code{font-size:12px}pre{background:#f8f8f8;padding:8px;overflow-x:auto;font-size:12px}
</style></head><body>"#,
    );
    let _ =
        write!(s, "<h1>orcd-gate report</h1><p><span class=\"pill\" style=\"background:{color}\">{verdict}</span> ");
    let _ = write!(s, "{} passed, {} failed, {} not run of {} cases", t.pass, t.fail, t.not_run, t.total);
    if let Some(c) = &r.git_commit {
        let _ = write!(s, " · commit <code>{}</code>", esc(c));
    }
    s.push_str("</p>");

    s.push_str("<h2>Suites</h2>");
    s.push_str(&suite_bars(r));
    s.push_str(
        "<table><tr><th>suite</th><th>backend</th><th>pass</th><th>fail</th><th>not run</th><th>total</th></tr>",
    );
    for x in &r.suites {
        let c = &x.counts;
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&x.suite),
            x.backend.name(),
            c.pass,
            c.fail,
            c.not_run,
            c.total
        );
    }
    s.push_str("</table>");

    if !r.gates.is_empty() {
        s.push_str("<h2>Gates</h2><table><tr><th>gate</th><th>status</th><th>pass</th><th>fail</th><th>not run</th><th>why not green</th></tr>");
        for g in &r.gates {
            let why: Vec<String> = g.reasons.iter().take(8).map(|x| esc(x)).collect();
            let more =
                if g.reasons.len() > 8 { format!("<br>… {} more", g.reasons.len() - 8) } else { String::new() };
            let _ = write!(
                s,
                "<tr><td>{}</td><td><span class=\"pill\" style=\"background:{}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}{more}</td></tr>",
                esc(&g.title),
                status_color(g.status),
                g.status.label(),
                g.pass,
                g.fail,
                g.not_run,
                why.join("<br>")
            );
        }
        s.push_str("</table>");
    }

    if !r.checklists.is_empty() {
        s.push_str("<h2>Integration checklists</h2>");
        for c in &r.checklists {
            let _ = write!(s, "<h3>{}</h3><ul>", esc(&c.title));
            for it in &c.items {
                let ids: Vec<String> = it.cases.iter().take(4).map(|x| format!("<code>{}</code>", esc(x))).collect();
                let _ = write!(
                    s,
                    "<li><span class=\"pill\" style=\"background:{}\">{}</span> {} <small>{}</small></li>",
                    status_color(it.status),
                    match it.status {
                        Status::Green => "done",
                        Status::Red => "failed",
                        Status::Incomplete => "open",
                    },
                    esc(&it.text),
                    ids.join(" ")
                );
            }
            s.push_str("</ul>");
        }
    }

    s.push_str("<h2>Error per layer</h2>");
    let plotted: Vec<_> = r.cases.iter().filter(|c| !c.series.is_empty()).collect();
    if plotted.is_empty() {
        s.push_str("<p>No case in this run measured per-layer error (model cases add these curves).</p>");
    }
    for c in plotted {
        for se in &c.series {
            let _ = write!(s, "<h3><code>{}</code> — {}</h3>{}", esc(&c.id), esc(&se.name), line_chart(se));
        }
    }

    s.push_str("<h2>Throughput</h2>");
    let ours: Vec<_> = r.cases.iter().filter(|c| c.metrics.keys().any(|k| k.ends_with("tok_s"))).collect();
    if ours.is_empty() {
        s.push_str("<p>No performance case ran in this report: worker-orcd's throughput is not measured here.</p>");
    } else {
        s.push_str("<table><tr><th>case</th><th>metric</th><th>tok/s</th></tr>");
        for c in ours {
            for (k, v) in c.metrics.iter().filter(|(k, _)| k.ends_with("tok_s")) {
                let _ = write!(s, "<tr><td><code>{}</code></td><td>{}</td><td>{v:.1}</td></tr>", esc(&c.id), esc(k));
            }
        }
        s.push_str("</table>");
    }
    if !peers.peers.is_empty() {
        s.push_str("<p>Peer figures recorded in <code>goldens/perf/peers.yaml</code> (DESIGN §9):</p><table><tr><th>peer</th><th>machine</th><th>model</th><th>metric</th><th>tok/s</th></tr>");
        for p in &peers.peers {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.peer),
                esc(&p.machine),
                esc(&p.model),
                esc(&p.metric),
                p.tok_s
            );
        }
        s.push_str("</table>");
    }

    let fails: Vec<_> = r.cases.iter().filter(|c| matches!(c.outcome, Outcome::Fail { .. })).collect();
    if !fails.is_empty() {
        s.push_str("<h2>Failures</h2>");
        for c in fails {
            if let Outcome::Fail { message } = &c.outcome {
                let _ = write!(s, "<h3><code>{}</code></h3><pre>{}</pre>", esc(&c.id), esc(message));
            }
        }
    }
    let not_run: Vec<_> = r.cases.iter().filter(|c| matches!(c.outcome, Outcome::NotRun { .. })).collect();
    if !not_run.is_empty() {
        s.push_str("<h2>Not run</h2><table><tr><th>case</th><th>reason</th></tr>");
        for c in not_run {
            if let Outcome::NotRun { reason } = &c.outcome {
                let _ = write!(s, "<tr><td><code>{}</code></td><td>{}</td></tr>", esc(&c.id), esc(reason));
            }
        }
        s.push_str("</table>");
    }
    let _ = write!(
        s,
        "<details><summary>All {} cases</summary><table><tr><th>case</th><th>outcome</th><th>ms</th></tr>",
        r.cases.len()
    );
    for c in &r.cases {
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td>{}</td><td>{:.1}</td></tr>",
            esc(&c.id),
            c.outcome.label(),
            c.duration_ms
        );
    }
    s.push_str("</table></details></body></html>\n");
    s
}
