//! `report.html`: one self-contained page (no external assets: inline CSS, SVG and a small script)
//! laid out in the order a reader needs it:
//! 1. the verdict (PASS / FAIL / INCOMPLETE, counts, gates green of all, counts per column);
//! 2. failures, then not-run cases grouped by reason, each with a copy-ready rerun command;
//! 3. the gates with why each is not green;
//! 4. error per layer, one plot per model with one line per column (cpu, cpu-fast, cuda,
//!    cuda-fast), drawn from the `series` model cases record from their taps;
//! 5. every case, filterable by suite, column and outcome;
//!
//! then per-suite counts, throughput beside the peer figures of `goldens/perf/peers.yaml`, and the
//! integration checklists. Every string from the report goes through [`esc`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::case::{Backend, CaseResult, Outcome, Series};
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
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

const GREEN: &str = "#2e7d32";
const RED: &str = "#c62828";
const GREY: &str = "#9e9e9e";

/// Line colour and dash of a column in the per-layer plots (dashes tell overlapping lines apart).
fn column_style(b: Backend) -> (&'static str, &'static str) {
    match b {
        Backend::Cpu => ("#1565c0", ""),
        Backend::CpuFast => ("#00897b", "2,3"),
        Backend::Cuda => ("#ef6c00", "8,4"),
        Backend::CudaFast => ("#8e24aa", "8,3,2,3"),
    }
}

fn outcome_color(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass { .. } => GREEN,
        Outcome::Fail { .. } => RED,
        Outcome::NotRun { .. } => GREY,
    }
}

fn status_color(s: Status) -> &'static str {
    match s {
        Status::Green => GREEN,
        Status::Red => RED,
        Status::Incomplete => GREY,
    }
}

/// The text an outcome carries: pass detail, failure message or not-run reason.
fn outcome_text(o: &Outcome) -> &str {
    match o {
        Outcome::Pass { detail } => detail,
        Outcome::Fail { message } => message,
        Outcome::NotRun { reason } => reason,
    }
}

/// The first line of `s`, at most `max` characters (an ellipsis marks a cut).
fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_string()
    }
}

/// A rerun command the reader can select or copy with the button.
fn rerun_block(cmd: &str) -> String {
    if cmd.is_empty() {
        return String::new();
    }
    format!(
        "<div class=\"rerun\"><code class=\"cmd\">{}</code><button type=\"button\" class=\"cp\" title=\"copy the rerun command\">copy</button></div>",
        esc(cmd)
    )
}

/// `YYYY-MM-DD HH:MM UTC` of a Unix time (civil-from-days, proleptic Gregorian).
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let orcd_engine::chat::Date { year: y, month: m, day: d } = orcd_engine::chat::Date::from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

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

/// The plot a model case belongs to: its name without the numerics (`exact` / `fast`), so that
/// `toy-exact-short` (cpu, cuda) and `toy-fast-short` (cpu-fast, cuda-fast) share one plot.
fn plot_key(name: &str) -> String {
    name.split('-').filter(|t| *t != "exact" && *t != "fast").collect::<Vec<_>>().join("-")
}

/// One model's plot: the case drawn (or explaining the gap) for each column, in column order.
#[derive(Debug)]
struct LayerPlot<'a> {
    title: String,
    columns: Vec<(Backend, Option<&'a CaseResult>)>,
}

/// Group the cases that recorded curves into one plot per model (and suite).
fn layer_plots(r: &Report) -> Vec<LayerPlot<'_>> {
    let keys: BTreeSet<(String, String)> =
        r.cases.iter().filter(|c| !c.series.is_empty()).map(|c| (c.suite.clone(), plot_key(&c.name))).collect();
    keys.into_iter()
        .map(|(suite, key)| {
            let of_key: Vec<&CaseResult> =
                r.cases.iter().filter(|c| c.suite == suite && plot_key(&c.name) == key).collect();
            let columns = Backend::ALL
                .into_iter()
                .map(|b| {
                    let on: Vec<&CaseResult> = of_key.iter().copied().filter(|c| c.backend == b).collect();
                    (b, on.iter().find(|c| !c.series.is_empty()).or(on.first()).copied())
                })
                .collect();
            let title = if suite == "models" { key } else { format!("{suite}::{key}") };
            LayerPlot { title, columns }
        })
        .collect()
}

/// The curve names plotted (union over cases, first-seen order) and the one shown first: the
/// block output (`l_out`) where there is one.
fn tap_names(plots: &[LayerPlot<'_>]) -> (Vec<String>, String) {
    let mut names: Vec<String> = Vec::new();
    for p in plots {
        for (_, c) in &p.columns {
            for s in c.iter().flat_map(|c| c.series.iter()) {
                if !names.contains(&s.name) {
                    names.push(s.name.clone());
                }
            }
        }
    }
    let shown = names.iter().find(|n| n.contains("l_out")).or(names.first()).cloned().unwrap_or_default();
    (names, shown)
}

/// One model's chart: a log10 y axis (errors span decades), layer ticks on x, one polyline per
/// column that has the curve, the threshold dashed in red. Each curve name is a `<g class="tap">`
/// of its own; only `shown` is visible until the reader picks another.
fn layer_chart(p: &LayerPlot<'_>, taps: &[String], shown: &str) -> String {
    let (w, h, l, rgt, t, b) = (480.0, 270.0, 56.0, 14.0, 12.0, 38.0);
    let drawn: Vec<(Backend, &Series)> = p
        .columns
        .iter()
        .filter_map(|(col, c)| c.map(|c| (*col, c)))
        .flat_map(|(col, c)| c.series.iter().map(move |s| (col, s)))
        .collect();
    let finite = |s: &Series| -> Vec<[f64; 2]> {
        s.points.iter().copied().filter(|p| p[0].is_finite() && p[1].is_finite()).collect()
    };
    let logs: Vec<f64> = drawn
        .iter()
        .flat_map(|(_, s)| finite(s).into_iter().map(|p| p[1]).chain(s.threshold))
        .filter(|v| *v > 0.0)
        .map(f64::log10)
        .collect();
    let (mut y0, mut y1) = logs.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if logs.is_empty() {
        (y0, y1) = (-1.0, 0.0);
    }
    y0 = y0.floor();
    y1 = y1.ceil().max(y0 + 1.0);
    let xs: Vec<f64> = drawn.iter().flat_map(|(_, s)| finite(s).into_iter().map(|p| p[0])).collect();
    let (mut x0, mut x1) = xs.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    if xs.is_empty() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 - x0 < 1.0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let px = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - rgt);
    // Zero (bit-exact) sits on the floor of the axis.
    let py = |v: f64| {
        let e = if v > 0.0 { v.log10() } else { y0 };
        t + (y1 - e) / (y1 - y0) * (h - t - b)
    };
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="error per layer, {}">"#,
        esc(&p.title)
    );
    let _ = write!(
        s,
        r##"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="#bbb"/>"##,
        w - l - rgt,
        h - t - b
    );
    // Decade grid and labels.
    let (e0, e1) = (y0 as i64, y1 as i64);
    let every = ((e1 - e0) / 8 + 1).max(1);
    let mut e = e0;
    while e <= e1 {
        let y = t + (y1 - e as f64) / (y1 - y0) * (h - t - b);
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">1e{e}</text>"##,
            w - rgt,
            l - 4.0,
            y + 4.0
        );
        e += every;
    }
    // Layer ticks: integers, at most ~12 labelled.
    let (first, last) = (x0.ceil() as i64, x1.floor() as i64);
    let step = ((last - first) / 12 + 1).max(1);
    let mut k = first;
    while k <= last {
        let x = px(k as f64);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#999"/><text x="{x:.1}" y="{}" font-size="11" text-anchor="middle">{k}</text>"##,
            h - b,
            h - b + 4.0,
            h - b + 16.0
        );
        k += step;
    }
    let x_label = drawn.first().map(|(_, s)| s.x_label.as_str()).unwrap_or("layer");
    let y_label = drawn.first().map(|(_, s)| s.y_label.as_str()).unwrap_or("");
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" font-size="12" text-anchor="middle">{}</text><text x="12" y="{:.1}" font-size="12" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text>"#,
        (l + w - rgt) / 2.0,
        h - 4.0,
        esc(x_label),
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
        esc(y_label)
    );
    for tap in taps {
        let here: Vec<&(Backend, &Series)> = drawn.iter().filter(|(_, s)| &s.name == tap).collect();
        if here.is_empty() {
            continue;
        }
        let hidden = if tap == shown { "" } else { r#" style="display:none""# };
        let _ = write!(s, r#"<g class="tap" data-tap="{}"{hidden}>"#, esc(tap));
        let mut ths: Vec<f64> = here.iter().filter_map(|(_, s)| s.threshold).filter(|v| *v > 0.0).collect();
        ths.sort_by(f64::total_cmp);
        ths.dedup();
        for th in ths {
            let y = py(th);
            let _ = write!(
                s,
                r#"<line x1="{l}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{RED}" stroke-dasharray="5,4"/><text x="{}" y="{:.1}" font-size="11" fill="{RED}" text-anchor="end">threshold {th:e}</text>"#,
                w - rgt,
                w - rgt - 4.0,
                y - 4.0
            );
        }
        for (col, se) in here {
            let (color, dash) = column_style(*col);
            let pts = finite(se);
            let path: Vec<String> = pts.iter().map(|p| format!("{:.1},{:.1}", px(p[0]), py(p[1]))).collect();
            let dash = if dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{dash}""#) };
            let _ = write!(
                s,
                r#"<polyline class="line" data-col="{}" fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
                col.name(),
                path.join(" ")
            );
            for p in &pts {
                let over = se.threshold.is_some_and(|th| p[1] > th);
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="{}" fill="{}"><title>{} · {} {}: {:.3e}</title></circle>"#,
                    px(p[0]),
                    py(p[1]),
                    if over { 3.5 } else { 2.5 },
                    if over { RED } else { color },
                    col.name(),
                    esc(&se.x_label),
                    p[0],
                    p[1]
                );
            }
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    s
}

/// The cases behind a plot, each with the columns it ran on.
fn plot_cases(p: &LayerPlot<'_>) -> String {
    let mut names: Vec<(&str, Vec<&str>)> = Vec::new();
    for (col, c) in &p.columns {
        if let Some(c) = c {
            match names.iter_mut().find(|(n, _)| *n == c.name) {
                Some((_, cols)) => cols.push(col.name()),
                None => names.push((&c.name, vec![col.name()])),
            }
        }
    }
    let parts: Vec<String> =
        names.iter().map(|(n, cols)| format!("<code>{}</code> ({})", esc(n), cols.join(", "))).collect();
    parts.join(" · ")
}

/// The legend under a plot: every column, with its case and outcome, or why it has no line.
fn layer_legend(p: &LayerPlot<'_>) -> String {
    let mut s = String::from("<ul class=\"legend\">");
    for (col, c) in &p.columns {
        let (color, dash) = column_style(*col);
        let has = c.is_some_and(|c| !c.series.is_empty());
        let swatch = if has {
            let dash = if dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{dash}""#) };
            format!(
                r#"<svg width="28" height="10" aria-hidden="true"><line x1="0" x2="28" y1="5" y2="5" stroke="{color}" stroke-width="2"{dash}/></svg>"#
            )
        } else {
            r##"<svg width="28" height="10" aria-hidden="true"><line x1="0" x2="28" y1="5" y2="5" stroke="#ccc" stroke-width="2" stroke-dasharray="1,3"/></svg>"##.to_string()
        };
        let (what, title) = match c {
            None => ("no data: no case on this column".to_string(), String::new()),
            Some(c) if has => (
                format!("<span style=\"color:{}\">{}</span>", outcome_color(&c.outcome), c.outcome.label()),
                c.id.clone(),
            ),
            Some(c) => match &c.outcome {
                Outcome::NotRun { reason } => {
                    (format!("no data: not run ({})", esc(&first_line(reason, 40))), format!("{}: {reason}", c.id))
                }
                o => (
                    "no data: ran, no taps recorded".to_string(),
                    format!("{} ({}): no per-layer taps", c.id, o.label()),
                ),
            },
        };
        let _ = write!(
            s,
            "<li class=\"{}\" data-col=\"{}\" title=\"{}\">{swatch} <b>{}</b> {what}</li>",
            if has { "has" } else { "none" },
            col.name(),
            esc(&title),
            col.name()
        );
    }
    s.push_str("</ul>");
    s
}

const STYLE: &str = r#"<style>
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1320px;padding:0 1.5em;color:#222;line-height:1.4}
h1{margin:.2em 0}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
nav a{margin-right:1em;font-size:14px}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;font-size:13px;vertical-align:top}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pill{color:#fff;padding:2px 8px;border-radius:10px;font-weight:600;white-space:nowrap}
.verdict{border-left:8px solid;padding:.6em 1em;background:#fafafa;margin:.8em 0}
.verdict .big{font-size:22px;padding:3px 14px;margin-right:.6em;vertical-align:middle}
.verdict .counts{font-size:18px;vertical-align:middle}.verdict .meta{color:#555;font-size:13px;margin-top:.4em}
.cols{margin-top:.5em;font-size:13px}.cols span{display:inline-block;margin-right:1.4em}
code{font-size:12px}pre{background:#f8f8f8;padding:8px;overflow-x:auto;font-size:12px;margin:.3em 0;white-space:pre-wrap}
.fail{border:1px solid #f3c4c4;border-left:5px solid #c62828;padding:.4em .8em;margin:.6em 0;background:#fffafa}
.fail h3{margin:.2em 0;font-size:15px}.fail small{color:#666;font-weight:normal}
.rerun{display:flex;gap:.5em;align-items:center;margin:.3em 0}
.rerun code.cmd{background:#263238;color:#eceff1;padding:4px 8px;border-radius:4px;user-select:all;overflow-x:auto;white-space:nowrap;max-width:100%}
button.cp{font-size:12px;padding:2px 8px;cursor:pointer;border:1px solid #999;border-radius:4px;background:#fff}
details{margin:.4em 0}summary{cursor:pointer}details.reason>summary{font-size:14px}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:14px}
.plot{border:1px solid #ddd;border-radius:6px;padding:8px}.plot h3{margin:0 0 4px;font-size:14px}
svg.chart{width:100%;height:auto;display:block}
ul.legend{list-style:none;padding:0;margin:4px 0 0;font-size:12px;display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:0 8px}.plot .sub{font-size:11px;color:#555;margin-bottom:2px}ul.legend li{margin:1px 0}ul.legend li.none{color:#888}
.filters{display:flex;gap:1em;flex-wrap:wrap;align-items:center;font-size:14px;margin:.5em 0}
.scroll{max-height:75vh;overflow:auto;border:1px solid #ddd}.scroll table{margin:0;width:100%}
.scroll th{position:sticky;top:0}
</style>"#;

const SCRIPT: &str = r#"<script>
(function(){
function fallback(t){var a=document.createElement('textarea');a.value=t;document.body.appendChild(a);a.select();try{document.execCommand('copy')}catch(e){}document.body.removeChild(a)}
function copied(b){var o=b.textContent;b.textContent='copied';setTimeout(function(){b.textContent=o},1200)}
document.addEventListener('click',function(e){var b=e.target.closest&&e.target.closest('button.cp');if(!b)return;
var t=b.getAttribute('data-cmd');if(t===null){var c=b.parentNode.querySelector('code');t=c?c.textContent:''}
if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(t).then(function(){copied(b)},function(){fallback(t);copied(b)})}else{fallback(t);copied(b)}});
function v(id){var e=document.getElementById(id);return e?e.value:''}
function filt(){var s=v('f-suite'),k=v('f-backend'),o=v('f-outcome'),q=v('f-text').toLowerCase(),n=0,rows=document.querySelectorAll('#cases tbody tr');
for(var i=0;i<rows.length;i++){var r=rows[i],d=r.dataset,ok=(!s||d.suite===s)&&(!k||d.backend===k)&&(!o||d.outcome===o)&&(!q||d.id.indexOf(q)>=0);r.style.display=ok?'':'none';if(ok)n++}
var c=document.getElementById('f-count');if(c)c.textContent=n+' of '+rows.length+' cases shown'}
['f-suite','f-backend','f-outcome','f-text'].forEach(function(id){var e=document.getElementById(id);if(e){e.addEventListener('input',filt);e.addEventListener('change',filt)}});
var tap=document.getElementById('tap');if(tap)tap.addEventListener('change',function(){var g=document.querySelectorAll('g.tap');for(var i=0;i<g.length;i++)g[i].style.display=g[i].getAttribute('data-tap')===tap.value?'':'none'});
filt();
})();
</script>"#;

/// Not-run groups with more cases than this start collapsed.
const OPEN_GROUP_MAX: usize = 8;

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
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>orcd-gate report</title>"#,
    );
    s.push_str(STYLE);
    s.push_str("</head><body><h1>orcd-gate report</h1>");
    s.push_str(
        "<nav><a href=\"#problems\">failures &amp; not run</a><a href=\"#gates\">gates</a><a href=\"#plots\">error per layer</a><a href=\"#all-cases\">all cases</a><a href=\"#suites\">suites</a><a href=\"#throughput\">throughput</a><a href=\"#checklists\">checklists</a></nav>",
    );

    // 1. Verdict.
    let green = r.gates.iter().filter(|g| g.status == Status::Green).count();
    let _ = write!(
        s,
        "<section id=\"verdict\" class=\"verdict\" style=\"border-color:{color}\"><span class=\"pill big\" style=\"background:{color}\">{verdict}</span><span class=\"counts\"><b>{}</b> passed · <b style=\"color:{}\">{}</b> failed · <b>{}</b> not run · of {} cases · ",
        t.pass,
        if t.fail > 0 { RED } else { "inherit" },
        t.fail,
        t.not_run,
        t.total
    );
    if r.gates.is_empty() {
        s.push_str("no gates defined</span>");
    } else {
        let _ = write!(s, "<b>{green}</b> of {} gates green</span>", r.gates.len());
    }
    let mut per_col: BTreeMap<Backend, [usize; 4]> = BTreeMap::new();
    for x in &r.suites {
        let e = per_col.entry(x.backend).or_default();
        e[0] += x.counts.pass;
        e[1] += x.counts.fail;
        e[2] += x.counts.not_run;
        e[3] += x.counts.total;
    }
    s.push_str("<div class=\"cols\">");
    for (b, [p, f, n, tot]) in &per_col {
        let c = if *f > 0 {
            RED
        } else if *n > 0 {
            GREY
        } else {
            GREEN
        };
        let _ =
            write!(s, "<span><b style=\"color:{c}\">{}</b>: {p} pass, {f} fail, {n} not run of {tot}</span>", b.name());
    }
    s.push_str("</div><div class=\"meta\">");
    if let Some(c) = &r.git_commit {
        let _ = write!(s, "commit <code>{}</code> · ", esc(c));
    }
    if r.generated_unix > 0 {
        let _ = write!(s, "generated {} · ", utc(r.generated_unix));
    }
    let _ = write!(s, "schema <code>{}</code></div></section>", esc(&r.schema));

    // 2. Failures, then not run grouped by reason.
    s.push_str("<section id=\"problems\">");
    let fails: Vec<_> = r.cases.iter().filter(|c| matches!(c.outcome, Outcome::Fail { .. })).collect();
    let _ = write!(s, "<h2 id=\"failures\">Failures ({})</h2>", fails.len());
    if fails.is_empty() {
        s.push_str("<p>No case failed.</p>");
    }
    for c in &fails {
        let _ = write!(
            s,
            "<div class=\"fail\"><h3><code>{}</code> <small>{} · {} · {}</small></h3><pre>{}</pre>{}</div>",
            esc(&c.id),
            esc(&c.suite),
            c.backend.name(),
            esc(&c.source),
            esc(outcome_text(&c.outcome).trim_end()),
            rerun_block(&c.rerun)
        );
    }
    let mut groups: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for c in &r.cases {
        if let Outcome::NotRun { reason } = &c.outcome {
            groups.entry(reason.as_str()).or_default().push(c);
        }
    }
    let mut groups: Vec<(&str, Vec<&CaseResult>)> = groups.into_iter().collect();
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let _ = write!(
        s,
        "<h2 id=\"not-run\">Not run ({}{})</h2>",
        t.not_run,
        match groups.len() {
            0 => String::new(),
            1 => ", 1 reason".to_string(),
            n => format!(", {n} reasons"),
        }
    );
    if groups.is_empty() {
        s.push_str("<p>Every case ran.</p>");
    }
    for (reason, cases) in &groups {
        let mut by_col: BTreeMap<Backend, usize> = BTreeMap::new();
        for c in cases {
            *by_col.entry(c.backend).or_default() += 1;
        }
        let cols: Vec<String> = by_col.iter().map(|(b, n)| format!("{} {n}", b.name())).collect();
        let _ = write!(
            s,
            "<details class=\"reason\"{}><summary><b>{}</b> case{} ({}) — {}</summary><table><tr><th>case</th><th>rerun</th></tr>",
            if cases.len() <= OPEN_GROUP_MAX { " open" } else { "" },
            cases.len(),
            if cases.len() == 1 { "" } else { "s" },
            cols.join(", "),
            esc(reason)
        );
        for c in cases {
            let _ = write!(s, "<tr><td><code>{}</code></td><td>{}</td></tr>", esc(&c.id), rerun_block(&c.rerun));
        }
        s.push_str("</table></details>");
    }
    s.push_str("</section>");

    // 3. Gates.
    s.push_str("<section id=\"gates\"><h2>Gates</h2>");
    if r.gates.is_empty() {
        s.push_str("<p>No gate is defined (goldens/gates.yaml).</p>");
    } else {
        s.push_str(
            "<table><tr><th>gate</th><th>status</th><th>pass</th><th>fail</th><th>not run</th><th>detail</th></tr>",
        );
        for g in &r.gates {
            let mut reasons: Vec<&String> = g.reasons.iter().collect();
            let rank = |x: &str| {
                if x.starts_with("failed") {
                    0
                } else if x.starts_with("not run") {
                    1
                } else {
                    2
                }
            };
            reasons.sort_by_key(|x| rank(x));
            let empty = reasons.iter().filter(|x| rank(x) == 2).count();
            let detail = if reasons.is_empty() {
                format!("all {} required cases passed", g.pass)
            } else {
                let mut parts = Vec::new();
                if g.fail > 0 {
                    parts.push(format!("{} failed", g.fail));
                }
                if g.not_run > 0 {
                    parts.push(format!("{} not run", g.not_run));
                }
                if empty > 0 {
                    parts.push(format!("{empty} requirement{} without a case", if empty == 1 { "" } else { "s" }));
                }
                let mut d = format!("<b>{}</b>", parts.join(", "));
                let li = |x: &&String| format!("<li>{}</li>", esc(x));
                let head: Vec<String> = reasons.iter().take(6).map(li).collect();
                let _ = write!(d, "<ul>{}</ul>", head.join(""));
                if reasons.len() > 6 {
                    let rest: Vec<String> = reasons.iter().skip(6).map(li).collect();
                    let _ = write!(
                        d,
                        "<details><summary>{} more</summary><ul>{}</ul></details>",
                        reasons.len() - 6,
                        rest.join("")
                    );
                }
                d
            };
            let _ = write!(
                s,
                "<tr><td>{}<br><small><code>{}</code></small></td><td><span class=\"pill\" style=\"background:{}\">{}</span></td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{detail}</td></tr>",
                esc(&g.title),
                esc(&g.id),
                status_color(g.status),
                g.status.label(),
                g.pass,
                g.fail,
                g.not_run
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section>");

    // 4. Error per layer.
    s.push_str("<section id=\"plots\"><h2>Error per layer</h2>");
    let plots = layer_plots(r);
    if plots.is_empty() {
        s.push_str("<p>No case in this run measured per-layer error (model cases add these curves).</p>");
    } else {
        let (taps, shown) = tap_names(&plots);
        s.push_str("<p>One plot per model: one line per column that recorded per-layer taps (exact-numerics cases with taps); a column without a line says why in the legend. Points above the threshold are red.");
        if taps.len() > 1 {
            s.push_str(" Curve: <select id=\"tap\">");
            for n in &taps {
                let _ = write!(
                    s,
                    "<option value=\"{}\"{}>{}</option>",
                    esc(n),
                    if *n == shown { " selected" } else { "" },
                    esc(n)
                );
            }
            s.push_str("</select>");
        } else {
            let _ = write!(s, " Curve: {}.", esc(&shown));
        }
        s.push_str("</p><div class=\"plots\">");
        for p in &plots {
            let _ = write!(
                s,
                "<div class=\"plot\"><h3>{}</h3><div class=\"sub\">{}</div>{}{}</div>",
                esc(&p.title),
                plot_cases(p),
                layer_chart(p, &taps, &shown),
                layer_legend(p)
            );
        }
        s.push_str("</div>");
    }
    s.push_str("</section>");

    // 5. All cases, filterable.
    let _ = write!(s, "<section id=\"all-cases\"><h2>All {} cases</h2><div class=\"filters\">", r.cases.len());
    let suites: BTreeSet<&str> = r.cases.iter().map(|c| c.suite.as_str()).collect();
    let backends: BTreeSet<Backend> = r.cases.iter().map(|c| c.backend).collect();
    let outcomes: Vec<&str> =
        ["fail", "not_run", "pass"].into_iter().filter(|o| r.cases.iter().any(|c| c.outcome.label() == *o)).collect();
    let select = |id: &str, label: &str, opts: Vec<String>| {
        let o: Vec<String> = opts.iter().map(|x| format!("<option value=\"{x}\">{x}</option>", x = esc(x))).collect();
        format!("<label>{label} <select id=\"{id}\"><option value=\"\">all</option>{}</select></label>", o.join(""))
    };
    s.push_str(&select("f-suite", "suite", suites.iter().map(|x| x.to_string()).collect()));
    s.push_str(&select("f-backend", "backend", backends.iter().map(|b| b.name().to_string()).collect()));
    s.push_str(&select("f-outcome", "outcome", outcomes.iter().map(|x| x.to_string()).collect()));
    s.push_str("<label>id contains <input id=\"f-text\" type=\"search\" size=\"24\"></label><span id=\"f-count\"></span></div>");
    s.push_str("<div class=\"scroll\"><table id=\"cases\"><thead><tr><th>case</th><th>suite</th><th>backend</th><th>outcome</th><th>ms</th><th>detail</th><th>rerun</th></tr></thead><tbody>");
    for c in &r.cases {
        let text = outcome_text(&c.outcome);
        let cp = if c.rerun.is_empty() {
            String::new()
        } else {
            format!("<button type=\"button\" class=\"cp\" data-cmd=\"{}\">copy</button>", esc(&c.rerun))
        };
        let _ = write!(
            s,
            "<tr data-suite=\"{}\" data-backend=\"{}\" data-outcome=\"{}\" data-id=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td style=\"color:{}\">{}</td><td class=\"n\">{:.1}</td><td title=\"{}\">{}</td><td>{cp}</td></tr>",
            esc(&c.suite),
            c.backend.name(),
            c.outcome.label(),
            esc(&c.id.to_lowercase()),
            esc(&c.id),
            esc(&c.suite),
            c.backend.name(),
            outcome_color(&c.outcome),
            c.outcome.label(),
            c.duration_ms,
            esc(&first_line(text, 400)),
            esc(&first_line(text, 120))
        );
    }
    s.push_str("</tbody></table></div></section>");

    // Then: per-suite counts, throughput, checklists.
    s.push_str("<section id=\"suites\"><h2>Suites</h2>");
    s.push_str(&suite_bars(r));
    s.push_str(
        "<table><tr><th>suite</th><th>backend</th><th>pass</th><th>fail</th><th>not run</th><th>total</th></tr>",
    );
    for x in &r.suites {
        let c = &x.counts;
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&x.suite),
            x.backend.name(),
            c.pass,
            c.fail,
            c.not_run,
            c.total
        );
    }
    s.push_str("</table></section>");

    s.push_str("<section id=\"throughput\"><h2>Throughput</h2>");
    let ours: Vec<_> = r.cases.iter().filter(|c| c.metrics.keys().any(|k| k.ends_with("tok_s"))).collect();
    if ours.is_empty() {
        s.push_str("<p>No performance case ran in this report: worker-orcd's throughput is not measured here.</p>");
    } else {
        s.push_str("<table><tr><th>case</th><th>metric</th><th>tok/s</th></tr>");
        for c in ours {
            for (k, v) in c.metrics.iter().filter(|(k, _)| k.ends_with("tok_s")) {
                let _ = write!(
                    s,
                    "<tr><td><code>{}</code></td><td>{}</td><td class=\"n\">{v:.1}</td></tr>",
                    esc(&c.id),
                    esc(k)
                );
            }
        }
        s.push_str("</table>");
    }
    if !peers.peers.is_empty() {
        s.push_str("<p>Peer figures recorded in <code>goldens/perf/peers.yaml</code> (DESIGN §9):</p><table><tr><th>peer</th><th>machine</th><th>model</th><th>metric</th><th>tok/s</th></tr>");
        for p in &peers.peers {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&p.peer),
                esc(&p.machine),
                esc(&p.model),
                esc(&p.metric),
                p.tok_s
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</section>");

    s.push_str("<section id=\"checklists\"><h2>Integration checklists</h2>");
    if r.checklists.is_empty() {
        s.push_str("<p>No checklist is defined.</p>");
    }
    for c in &r.checklists {
        let done = c.items.iter().filter(|i| i.status == Status::Green).count();
        let _ = write!(
            s,
            "<details><summary><b>{}</b>: {done} of {} items ticked</summary><ul>",
            esc(&c.title),
            c.items.len()
        );
        for it in &c.items {
            let ids: Vec<String> = it.cases.iter().take(4).map(|x| format!("<code>{}</code>", esc(x))).collect();
            let more = if it.cases.len() > 4 { format!(" and {} more", it.cases.len() - 4) } else { String::new() };
            let _ = write!(
                s,
                "<li><span class=\"pill\" style=\"background:{}\">{}</span> {} <small>{}{more}</small></li>",
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
        s.push_str("</ul></details>");
    }
    s.push_str("</section>");
    s.push_str(SCRIPT);
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::gates::{GateDef, GatesFile, Requirement};

    fn case(suite: &str, name: &str, backend: Backend, outcome: Outcome) -> CaseResult {
        let id = format!("{suite}::{name}::{}", backend.name());
        CaseResult {
            rerun: format!("cargo nextest run -E 'test(={id})'"),
            id,
            suite: suite.into(),
            name: name.into(),
            backend,
            source: format!("goldens/{suite}/{name}.yaml"),
            outcome,
            duration_ms: 1.0,
            metrics: Default::default(),
            series: Vec::new(),
        }
    }
    fn pass() -> Outcome {
        Outcome::Pass { detail: "ok".into() }
    }
    fn layers(c: &mut CaseResult, name: &str, ys: &[f64]) {
        c.series.push(Series {
            name: name.into(),
            x_label: "layer".into(),
            y_label: "NMSE".into(),
            points: ys.iter().enumerate().map(|(i, y)| [i as f64, *y]).collect(),
            threshold: Some(1e-9),
        });
    }
    fn gates() -> GatesFile {
        let req = |suite: &str, backend| Requirement { suite: suite.into(), backend, cases: None };
        GatesFile {
            gates: vec![
                GateDef {
                    id: "g-ops".into(),
                    title: "Ops".into(),
                    description: String::new(),
                    require: vec![req("ops", None)],
                },
                GateDef {
                    id: "g-models".into(),
                    title: "Models".into(),
                    description: String::new(),
                    require: vec![req("models", Some(Backend::Cuda))],
                },
            ],
            checklists: Vec::new(),
        }
    }
    /// A merged CPU + GPU report: one failure on cuda-fast, a not-run cuda case, a model on all
    /// four columns (exact cases with taps on cpu and cuda, fast ones without).
    fn report() -> Report {
        let mut exact_cpu = case("models", "toy-exact-short", Backend::Cpu, pass());
        layers(&mut exact_cpu, "NMSE of blk.N.l_out vs reference", &[1e-13, 2e-13, 4e-13]);
        layers(&mut exact_cpu, "NMSE of blk.N.attn_out vs reference", &[1e-14, 2e-14, 4e-14]);
        let mut exact_cuda = case("models", "toy-exact-short", Backend::Cuda, pass());
        layers(&mut exact_cuda, "NMSE of blk.N.l_out vs reference", &[2e-13, 3e-13, 5e-13]);
        layers(&mut exact_cuda, "NMSE of blk.N.attn_out vs reference", &[2e-14, 3e-14, 5e-14]);
        let mut other = case("models", "big-exact-short", Backend::Cpu, pass());
        layers(&mut other, "NMSE of blk.N.l_out vs reference", &[1e-12, 0.0, 3e-12]);
        let cases = vec![
            case("ops", "add", Backend::Cpu, pass()),
            case("ops", "add", Backend::CudaFast, Outcome::Fail { message: "NMSE 1e-2 > 5e-4\n  case: x".into() }),
            exact_cpu,
            exact_cuda,
            other,
            case("models", "toy-fast-short", Backend::CpuFast, pass()),
            case("models", "big-exact-short", Backend::Cuda, Outcome::NotRun { reason: "no CUDA device".into() }),
        ];
        Report::new(cases, Some("abc".into()), 0, &gates())
    }
    #[test]
    fn emulated_cuda_results_are_named_and_never_pass_a_gate() {
        let mut emu = case("models", "toy-exact-short", Backend::Cuda, pass());
        emu.metrics.insert(crate::case::EMULATED_METRIC.into(), 1.0);
        let r = Report::new(vec![case("ops", "add", Backend::Cpu, pass()), emu], None, 0, &gates());
        // Counted as what it was (a pass of the emulator) …
        assert_eq!(r.totals.pass, 2);
        // … but the gate that needs models on cuda sees it not run, and the page says why.
        let g = r.gates.iter().find(|g| g.id == "g-models").unwrap();
        assert_eq!((g.pass, g.not_run), (0, 1), "{g:?}");
        assert!(r.markdown().contains("1 results of the cuda columns ran on the emulated CUDA device"));
        let plain = Report::new(vec![case("models", "toy-exact-short", Backend::Cuda, pass())], None, 0, &gates());
        assert_eq!(plain.gates.iter().find(|g| g.id == "g-models").unwrap().pass, 1);
        assert!(!plain.markdown().contains("emulated"));
    }
    fn at(html: &str, needle: &str) -> usize {
        html.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the page"))
    }
    /// The text between two markers.
    fn between<'a>(html: &'a str, from: &str, to: &str) -> &'a str {
        let a = at(html, from);
        let b = a + at(&html[a..], to);
        &html[a..b]
    }

    #[test]
    fn sections_come_in_reading_order() {
        let html = render(&report(), &Peers::default());
        let order = [
            "id=\"verdict\"",
            "id=\"failures\"",
            "id=\"not-run\"",
            "<section id=\"gates\"",
            "<section id=\"plots\"",
            "<table id=\"cases\"",
        ];
        let pos: Vec<usize> = order.iter().map(|n| at(&html, n)).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{order:?} at {pos:?}");
        // The failure itself is listed before the all-cases table.
        assert!(at(&html, "<div class=\"fail\"><h3><code>ops::add::cuda-fast") < at(&html, "<table id=\"cases\""));
    }

    #[test]
    fn verdict_has_counts_and_gates_green() {
        let html = render(&report(), &Peers::default());
        let v = between(&html, "id=\"verdict\"", "</section>");
        assert!(v.contains(">FAIL<"), "{v}");
        assert!(v.contains("<b>5</b> passed"), "{v}");
        assert!(v.contains(">1</b> failed"), "{v}");
        assert!(v.contains("<b>1</b> not run"), "{v}");
        // g-ops has a failure, g-models a not-run case: none green.
        assert!(v.contains("<b>0</b> of 2 gates green"), "{v}");
        let all_green = Report::new(
            vec![case("ops", "add", Backend::Cpu, pass())],
            None,
            0,
            &GatesFile { gates: gates().gates[..1].to_vec(), checklists: Vec::new() },
        );
        let html = render(&all_green, &Peers::default());
        assert!(html.contains(">PASS<") && html.contains("<b>1</b> of 1 gates green"));
    }

    #[test]
    fn failures_and_not_run_carry_copyable_rerun_commands() {
        let html = render(&report(), &Peers::default());
        let problems = between(&html, "<section id=\"problems\">", "</section>");
        for id in ["ops::add::cuda-fast", "models::big-exact-short::cuda"] {
            let cmd = esc(&format!("cargo nextest run -E 'test(={id})'"));
            assert!(
                problems.contains(&format!("<code class=\"cmd\">{cmd}</code><button type=\"button\" class=\"cp\"")),
                "rerun of {id} missing: {problems}"
            );
        }
        assert!(problems.contains("NMSE 1e-2 &gt; 5e-4"), "the failure message is shown");
        assert!(problems.contains("no CUDA device"), "the not-run reason is shown");
        // The copy button has its script.
        assert!(html.contains("navigator.clipboard") && html.contains("button.cp"));
    }

    #[test]
    fn not_run_is_grouped_by_reason_and_collapsed_when_many() {
        let mut cases: Vec<CaseResult> = (0..12)
            .map(|i| case("ops", &format!("op{i}"), Backend::Cuda, Outcome::NotRun { reason: "no CUDA device".into() }))
            .collect();
        cases.push(case("gguf", "big", Backend::Cpu, Outcome::NotRun { reason: "model not fetched".into() }));
        let html = render(&Report::new(cases, None, 0, &GatesFile::default()), &Peers::default());
        let nr = between(&html, "id=\"not-run\"", "</section>");
        assert!(nr.contains("Not run (13, 2 reasons)"), "{nr}");
        assert_eq!(nr.matches("<details class=\"reason\"").count(), 2, "{nr}");
        // The big group first, collapsed; the small one open.
        let big = at(nr, "<details class=\"reason\"><summary><b>12</b> cases (cuda 12) — no CUDA device");
        let small = at(nr, "<details class=\"reason\" open><summary><b>1</b> case (cpu 1) — model not fetched");
        assert!(big < small, "{nr}");
        assert_eq!(nr.matches("class=\"cmd\"").count(), 13, "one rerun per not-run case");
    }

    #[test]
    fn filters_list_what_the_report_holds() {
        let html = render(&report(), &Peers::default());
        let opts = |id: &str| -> Vec<String> {
            let sel = between(&html, &format!("<select id=\"{id}\">"), "</select>");
            sel.split("<option value=\"").skip(1).map(|o| o[..o.find('"').unwrap()].to_string()).collect()
        };
        assert_eq!(opts("f-backend"), vec!["", "cpu", "cpu-fast", "cuda", "cuda-fast"]);
        assert_eq!(opts("f-suite"), vec!["", "models", "ops"]);
        assert_eq!(opts("f-outcome"), vec!["", "fail", "not_run", "pass"]);
        let only_cpu = Report::new(vec![case("ops", "add", Backend::Cpu, pass())], None, 0, &GatesFile::default());
        let html = render(&only_cpu, &Peers::default());
        let sel = between(&html, "<select id=\"f-backend\">", "</select>");
        assert!(sel.contains("\"cpu\"") && !sel.contains("cuda"), "{sel}");
        // Every case is a row that the filters can match.
        let html = render(&report(), &Peers::default());
        let rows = between(&html, "<table id=\"cases\">", "</table>");
        assert_eq!(rows.matches("<tr data-suite=").count(), 7);
        assert!(rows.contains("data-suite=\"ops\" data-backend=\"cuda-fast\" data-outcome=\"fail\""));
    }

    #[test]
    fn a_plot_per_model_with_one_line_per_column() {
        let html = render(&report(), &Peers::default());
        let plots = between(&html, "<div class=\"plots\">", "</section>");
        assert_eq!(plots.matches("<div class=\"plot\">").count(), 2, "toy and big: {plots}");
        let toy = between(plots, "<h3>toy-short</h3>", "</ul>");
        // The shown curve (l_out) has one line per column with data: cpu and cuda.
        let shown = between(toy, "<g class=\"tap\" data-tap=\"NMSE of blk.N.l_out vs reference\">", "</g>");
        let lines: Vec<&str> =
            shown.split("<polyline class=\"line\" data-col=\"").skip(1).map(|x| &x[..x.find('"').unwrap()]).collect();
        assert_eq!(lines, vec!["cpu", "cuda"]);
        assert_ne!(column_style(Backend::Cpu).0, column_style(Backend::Cuda).0, "distinct colours");
        assert!(shown.contains("threshold 1e-9"));
        // The other curve is there, hidden until picked.
        assert!(toy.contains("data-tap=\"NMSE of blk.N.attn_out vs reference\" style=\"display:none\""));
        assert!(html.contains("<select id=\"tap\">"));
        // Layer ticks 0, 1, 2.
        for k in 0..3 {
            assert!(toy.contains(&format!("text-anchor=\"middle\">{k}</text>")), "tick {k}");
        }
        // The legend names every column, saying why two have no line.
        let legend = &toy[at(toy, "<ul class=\"legend\">")..];
        assert_eq!(legend.matches("<li class=\"has\"").count(), 2, "{legend}");
        assert!(legend.contains("data-col=\"cpu-fast\"") && legend.contains("no data: ran, no taps recorded"));
        assert!(legend.contains("data-col=\"cuda-fast\"") && legend.contains("no data: no case on this column"));
        let big = between(plots, "<h3>big-short</h3>", "</ul>");
        assert!(big.contains("no data: not run (no CUDA device)"), "{big}");
        assert_eq!(big.matches("<polyline").count(), 1);
    }

    #[test]
    fn report_strings_are_escaped() {
        let evil = "<script>alert('x')</script> & \"q\"";
        let mut c = case("ops", "add", Backend::Cpu, Outcome::Fail { message: evil.into() });
        c.rerun = evil.into();
        let mut n = case("ops", "mul", Backend::Cpu, Outcome::NotRun { reason: evil.into() });
        n.suite = evil.into();
        let html = render(&Report::new(vec![c, n], Some(evil.into()), 0, &GatesFile::default()), &Peers::default());
        assert!(!html.contains("<script>alert"), "unescaped report text");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
        assert_eq!(html.matches("<script>").count(), 1, "only the page's own script");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_796_272_955), "2026-12-03 04:42 UTC");
        assert_eq!(utc(951_825_600), "2000-02-29 12:00 UTC");
    }

    #[test]
    fn plot_keys_drop_the_numerics() {
        assert_eq!(plot_key("gemma3-270m-q4_k_m-exact-short"), plot_key("gemma3-270m-q4_k_m-fast-short"));
        assert_eq!(plot_key("llama-synth-tiny-f32-short"), plot_key("llama-synth-tiny-f32-fast-short"));
        assert_ne!(plot_key("llama-synth-tiny-f32-short"), plot_key("llama-synth-tiny-f16-short"));
    }
}
