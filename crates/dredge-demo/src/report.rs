//! `report.html`: a self-contained page rendered from a [`Summary`].
//!
//! One file that opens offline anywhere: inline CSS and inline SVG, no
//! scripts, fonts, images or links. Every string from the summary (app
//! names come from tags) is HTML-escaped.

use std::fmt::Write;

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::summary::{Counts, Misattribution, Pair, Summary, TIMELINE_BUCKET_SECONDS};

/// Writing to a `String` cannot fail.
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{ let _ = write!($dst, $($arg)*); }};
}

const GOOD: &str = "#1a7f4b";
const WARN: &str = "#b7791f";
const BAD: &str = "#c53030";
const NEUTRAL: &str = "#a0aec0";
const ACCENT: &str = "#2f6fb0";
const AZ: &str = "#6b5fb5";
const REGION: &str = "#c26a2b";
/// Width every chart's viewBox is laid out in; the SVG scales to the page.
const CHART_W: f64 = 960.0;

pub fn render(summary: &Summary) -> String {
    let mut body = String::new();
    body.push_str(&header(summary));
    body.push_str(&headline(&summary.score));
    body.push_str(&score_tables(summary));
    body.push_str(&traffic(summary));
    body.push_str(&misattributions(summary));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Dredge demo report · seed {}</title>\n<style>{CSS}</style>\n</head>\n\
         <body>\n<main>\n{body}<footer>Rendered by <code>dredge demo</code>. \
         This page is self-contained: no scripts, no network.</footer>\n</main>\n</body>\n</html>\n",
        summary.setup.seed
    )
}

const CSS: &str = r#"
:root{--ink:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:28px 20px 40px}
h1{font-size:26px;margin:0 0 4px;letter-spacing:-.01em}
h2{font-size:18px;margin:0 0 4px}
p.note{color:var(--muted);margin:0 0 14px;font-size:13.5px}
.setup{display:flex;flex-wrap:wrap;gap:8px 28px;margin:10px 0 20px}
.setup dt{color:var(--muted);font-size:11.5px;text-transform:uppercase;letter-spacing:.05em}
.setup dd{margin:0;font-weight:600;font-size:14.5px}
.setup small{color:var(--muted);font-weight:400}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;
 padding:18px 20px;margin:0 0 18px}
.verdict{border-left:6px solid var(--c)}
.verdict .say{font-size:19px;font-weight:600;color:var(--c);margin:0 0 14px}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:12px}
.stat{border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.stat .n{font-size:32px;font-weight:700;line-height:1.15;font-variant-numeric:tabular-nums}
.stat .l{color:var(--muted);font-size:13px}
.stat .p{font-size:14px;font-weight:600}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(480px,100%),1fr));gap:18px}
.wide{overflow-x:auto}
.grid2>section{margin:0}
.row{margin:0 0 18px}
table{border-collapse:collapse;width:100%;font-size:13.5px;font-variant-numeric:tabular-nums}
th{text-align:left;color:var(--muted);font-weight:600;border-bottom:2px solid var(--line);padding:6px 8px}
td{border-bottom:1px solid var(--line);padding:6px 8px;vertical-align:top}
td.n,th.n{text-align:right;white-space:nowrap}
td small{color:var(--muted)}
.bad{color:#c53030;font-weight:600}
.warn{color:#b7791f}
h3{font-size:14px;margin:14px 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
svg{display:block;max-width:100%;height:auto}
svg text{font-family:inherit}
.empty{color:var(--muted);font-style:italic}
.ok{border-left:6px solid #1a7f4b;background:#f0faf4}
.ok .say{color:#1a7f4b;font-size:18px;font-weight:600;margin:0}
.scroll{max-height:720px;overflow:auto;border:1px solid var(--line);border-radius:6px}
.scroll th{position:sticky;top:0;background:var(--card)}
ul.ev{margin:0;padding-left:16px;color:var(--muted);font-size:12.5px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
footer{color:var(--muted);font-size:12.5px;text-align:center;margin-top:24px}
"#;

/// The setup as a strip of labeled facts: easier to scan than a sentence.
fn header(s: &Summary) -> String {
    let st = &s.setup;
    let facts = [
        ("seed", st.seed.to_string()),
        ("flows", thousands(st.flows)),
        ("churn", format!("{} <small>replacements/instance/h</small>", trim_float(st.churn))),
        ("delays", esc(&st.delays)),
        ("simulated", format!("{} → {} <small>{}</small>", utc(st.start), utc(st.end), duration(st.end - st.start))),
        (
            "fleet",
            format!(
                "{} accounts · {} regions · {} VPCs · {} apps · {} instances · {} standalone ENIs",
                st.accounts,
                st.regions,
                st.vpcs,
                st.apps,
                thousands(st.instances.into()),
                thousands(st.standalone_enis.into())
            ),
        ),
        (
            "ownership events",
            format!(
                "{} generated · {} delivered · <b>{}</b> lost · {} reconciles · {} compactions",
                thousands(st.events_generated),
                thousands(st.events_delivered),
                thousands(st.events_lost),
                thousands(st.reconciles),
                thousands(st.compactions)
            ),
        ),
        (
            "rate",
            format!(
                "{} flows/s <small>{} flows in {:.1} s</small>",
                thousands(s.rate.flows_per_second.round() as u64),
                thousands(s.rate.flows),
                s.rate.elapsed_seconds
            ),
        ),
    ];
    let mut out = String::from("<h1>Dredge demo: attribution against ground truth</h1>\n<dl class=\"setup\">\n");
    for (label, value) in facts {
        w!(out, "<div><dt>{label}</dt><dd>{value}</dd></div>\n");
    }
    out.push_str("</dl>\n");
    out
}

/// The verdict first: red for any misattribution (a wrong answer is worse
/// than no answer), amber when knowable sides went unattributed.
fn headline(c: &Counts) -> String {
    let total = c.total();
    let (color, say) = if c.misattributed > 0 {
        (BAD, format!("{} flow sides misattributed", thousands(c.misattributed)))
    } else if c.knowable_unattributed > 0 {
        (WARN, format!("No misattributions · {} knowable sides left unattributed", thousands(c.knowable_unattributed)))
    } else {
        (GOOD, "No misattributions · every knowable side attributed".to_string())
    };
    let mut out = format!(
        "<section class=\"verdict\" style=\"--c:{color}\">\n<p class=\"say\">{say}</p>\n<div class=\"stats\">\n"
    );
    let mis_color = if c.misattributed > 0 { BAD } else { GOOD };
    for (label, n, col) in [
        ("correct", c.correct, GOOD),
        ("unattributed", c.unattributed, NEUTRAL),
        ("misattributed", c.misattributed, mis_color),
    ] {
        w!(
            out,
            "<div class=\"stat\"><div class=\"n\" style=\"color:{col}\">{}</div>\
             <div class=\"p\">{} of sides</div><div class=\"l\">{label}</div></div>\n",
            thousands(n),
            pct(n, total)
        );
    }
    let ku_color = if c.knowable_unattributed > 0 { WARN } else { GOOD };
    w!(
        out,
        "<div class=\"stat\"><div class=\"n\" style=\"color:{ku_color}\">{}</div>\
         <div class=\"p\">{} of {} knowable sides</div>\
         <div class=\"l\">knowable but unattributed</div></div>\n</div>\n",
        pct(c.knowable_unattributed, c.knowable),
        thousands(c.knowable_unattributed),
        thousands(c.knowable)
    );
    w!(
        out,
        "<div style=\"margin-top:14px\">{}</div>\n<p class=\"note\" style=\"margin:6px 0 0\">\
         {} flow sides (two per flow): <span style=\"color:{GOOD}\">■</span> correct \
         <span style=\"color:{NEUTRAL}\">■</span> unattributed \
         <span style=\"color:{BAD}\">■</span> misattributed</p>\n</section>\n",
        stacked_bar(c, CHART_W, 18.0),
        thousands(total)
    );
    out
}

fn score_tables(s: &Summary) -> String {
    let mut out = String::from(
        "<section>\n<h2>Score by group</h2>\n<p class=\"note\">Each flow has two sides \
         (source and destination), scored separately.</p>\n",
    );
    for (title, groups) in
        [("By side", &s.by_side), ("By reported attribution", &s.by_attribution), ("By true kind", &s.by_truth)]
    {
        // Wide tables scroll sideways on a phone rather than squeezing.
        w!(out, "<h3>{title}</h3>\n<div class=\"wide\">{}</div>\n", counts_table(groups));
    }
    out.push_str("</section>\n");
    out
}

fn counts_table<'a>(groups: impl IntoIterator<Item = (&'a String, &'a Counts)>) -> String {
    let mut out = String::from(
        "<table><thead><tr><th></th><th class=\"n\">sides</th><th class=\"n\">correct</th>\
         <th class=\"n\">unattributed</th><th class=\"n\">misattributed</th>\
         <th class=\"n\">knowable unattributed</th><th style=\"width:26%\"></th></tr></thead><tbody>\n",
    );
    for (name, c) in groups {
        let t = c.total();
        let bad = if c.misattributed > 0 { " bad" } else { "" };
        let warn = if c.knowable_unattributed > 0 { " warn" } else { "" };
        w!(
            out,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td>\
             <td class=\"n\">{} <small>{}</small></td><td class=\"n\">{} <small>{}</small></td>\
             <td class=\"n{bad}\">{} <small>{}</small></td>\
             <td class=\"n{warn}\">{} <small>of {}</small></td><td>{}</td></tr>\n",
            esc(name),
            thousands(t),
            thousands(c.correct),
            pct(c.correct, t),
            thousands(c.unattributed),
            pct(c.unattributed, t),
            thousands(c.misattributed),
            pct(c.misattributed, t),
            thousands(c.knowable_unattributed),
            thousands(c.knowable),
            stacked_bar(c, 240.0, 12.0)
        );
    }
    out.push_str("</tbody></table>\n");
    out
}

fn traffic(s: &Summary) -> String {
    let mut out = format!(
        "<section class=\"row\">\n<h2>Region to region</h2>\n<p class=\"note\">Bytes by the \
         regions of the reported owners; shade on a log scale.</p>\n{}</section>\n",
        heatmap(&s.regions)
    );
    w!(
        out,
        "<section class=\"row\">\n<h2>Top application pairs</h2>\n<p class=\"note\">Reported \
         source → destination, by bytes.</p>\n{}</section>\n",
        pair_bars(&s.top_pairs, ACCENT, CHART_W)
    );
    w!(
        out,
        "<div class=\"grid2 row\">\n<section>\n<h2>Cross-AZ bytes</h2>\n<p class=\"note\">Traffic \
         between availability zones, by application pair.</p>\n{}</section>\n\
         <section>\n<h2>Cross-region bytes</h2>\n<p class=\"note\">Traffic between regions, \
         by application pair.</p>\n{}</section>\n</div>\n",
        pair_bars(&s.cross_az, AZ, 560.0),
        pair_bars(&s.cross_region, REGION, 560.0)
    );
    out
}

fn misattributions(s: &Summary) -> String {
    if s.score.misattributed == 0 {
        return "<section class=\"ok\">\n<p class=\"say\">✓ No misattributions</p>\n\
                <p class=\"note\" style=\"margin:4px 0 0\">Every side the pipeline attributed \
                went to its true owner, so there is no timeline, cause or sample to show.</p>\n\
                </section>\n"
            .to_string();
    }
    let mut out = String::from("<section>\n<h2>Misattributions over flow time</h2>\n");
    w!(
        out,
        "<p class=\"note\">Misattributed sides per 5 minutes (UTC).</p>\n{}",
        timeline(&s.misattribution_timeline, s.setup.start, s.setup.end)
    );
    w!(out, "<h3>Causes</h3>\n{}", causes_table(s));
    w!(
        out,
        "<h3>Samples</h3>\n<p class=\"note\">The first {} of {} misattributed sides in flow \
         time, with the ownership events behind each.</p>\n{}</section>\n",
        thousands(s.misattributions.len() as u64),
        thousands(s.score.misattributed),
        samples_table(&s.misattributions)
    );
    out
}

fn causes_table(s: &Summary) -> String {
    let mut causes: Vec<_> = s.causes.iter().collect();
    causes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let all: u64 = causes.iter().map(|(_, n)| **n).sum();
    let mut out = String::from(
        "<table><thead><tr><th>cause</th><th class=\"n\">sides</th><th class=\"n\">share</th>\
         <th style=\"width:40%\"></th></tr></thead><tbody>\n",
    );
    for (cause, &n) in causes {
        let width = if all == 0 { 0.0 } else { 100.0 * n as f64 / all as f64 };
        w!(
            out,
            "<tr><td><code>{}</code></td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td><div style=\"background:{BAD};opacity:.75;height:10px;margin-top:5px;\
             border-radius:2px;width:{width:.1}%\"></div></td></tr>\n",
            esc(cause),
            thousands(n),
            pct(n, all)
        );
    }
    out.push_str("</tbody></table>\n");
    out
}

fn samples_table(rows: &[Misattribution]) -> String {
    let mut out = String::from(
        "<div class=\"scroll\"><table><thead><tr><th>flow time (UTC)</th><th>side</th>\
         <th>address</th><th>truth</th><th>reported</th><th>cause</th><th style=\"width:34%\">events</th></tr>\
         </thead><tbody>\n",
    );
    for m in rows {
        let events: String = m.events.iter().map(|e| format!("<li>{}</li>", esc(e))).collect();
        w!(
            out,
            "<tr><td style=\"white-space:nowrap\"><b>{}</b><br><small>{}<br>processed +{}</small></td><td>{}</td>\
             <td><code>{}</code></td><td>{}</td><td class=\"bad\">{}</td><td><code>{}</code></td>\
             <td><ul class=\"ev\">{events}</ul></td></tr>\n",
            utc_part(m.flow_time, format_description!("[hour]:[minute]:[second]")),
            utc_part(m.flow_time, format_description!("[year]-[month]-[day]")),
            duration(m.processed_at - m.flow_time),
            esc(&m.side),
            esc(&m.address),
            esc(&m.truth),
            esc(&m.reported),
            esc(&m.cause)
        );
    }
    out.push_str("</tbody></table></div>\n");
    out
}

// ---- SVG charts ----

/// One full-width bar split into correct / unattributed / misattributed.
/// A nonzero misattributed slice gets at least 2px so it is never invisible.
fn stacked_bar(c: &Counts, width: f64, height: f64) -> String {
    let total = c.total();
    if total == 0 {
        return String::new();
    }
    let mut mis = width * c.misattributed as f64 / total as f64;
    if c.misattributed > 0 {
        mis = mis.max(2.0);
    }
    let mut un = width * c.unattributed as f64 / total as f64;
    if c.unattributed > 0 {
        un = un.max(2.0);
    }
    let ok = (width - mis - un).max(0.0);
    format!(
        "<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\">\
         <title>{} correct, {} unattributed, {} misattributed</title>\
         <rect width=\"{ok:.1}\" height=\"{height}\" fill=\"{GOOD}\"/>\
         <rect x=\"{ok:.1}\" width=\"{un:.1}\" height=\"{height}\" fill=\"{NEUTRAL}\"/>\
         <rect x=\"{:.1}\" width=\"{mis:.1}\" height=\"{height}\" fill=\"{BAD}\"/></svg>",
        thousands(c.correct),
        thousands(c.unattributed),
        thousands(c.misattributed),
        ok + un
    )
}

/// Horizontal bars, one per pair: label left, bar, bytes and flows right.
/// `width` is the viewBox width: half-page panels pass a narrower one so
/// their text is not scaled down to nothing.
fn pair_bars(pairs: &[Pair], color: &str, width: f64) -> String {
    if pairs.is_empty() {
        return "<p class=\"empty\">No traffic of this kind.</p>\n".to_string();
    }
    let (label_w, value_w, row_h) = ((width * 0.34).round(), 190.0, 26.0);
    let bar_max = width - label_w - value_w;
    // About 8 px per character at 13 px in a wide sans (DejaVu).
    let label_chars = (label_w / 8.0) as usize;
    let max = pairs.iter().map(|p| p.bytes).max().unwrap_or(0).max(1) as f64;
    let height = row_h * pairs.len() as f64 + 4.0;
    let mut out = format!("<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\" font-size=\"13\">\n");
    for (i, p) in pairs.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let label = format!("{} → {}", p.src, p.dst);
        let bar = (bar_max * p.bytes as f64 / max).max(1.0);
        w!(
            out,
            "<g><title>{}: {} in {} flows</title>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#1f2933\">{}</text>\
             <rect x=\"{label_w}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#616e7c\"><tspan fill=\"#1f2933\" font-weight=\"600\">{}</tspan> · {} flows</text></g>\n",
            esc(&label),
            human_bytes(p.bytes),
            thousands(p.flows),
            label_w - 10.0,
            y + 17.0,
            esc(&truncate(&label, label_chars)),
            y + 4.0,
            row_h - 8.0,
            label_w + bar + 8.0,
            y + 17.0,
            human_bytes(p.bytes),
            thousands(p.flows)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Source region rows × destination region columns, every cell labeled
/// with its bytes. Log shading: bytes span orders of magnitude.
fn heatmap(regions: &[Pair]) -> String {
    if regions.is_empty() {
        return "<p class=\"empty\">No traffic.</p>\n".to_string();
    }
    let mut names: Vec<&str> = regions.iter().flat_map(|p| [p.src.as_str(), p.dst.as_str()]).collect();
    names.sort_unstable();
    names.dedup();
    let n = names.len() as f64;
    let (label_w, head_h, cell_w, cell_h) = (150.0, 46.0, 120.0, 46.0);
    let width = label_w + n * cell_w + 10.0;
    let height = head_h + n * cell_h + 10.0;
    let max = regions.iter().map(|p| p.bytes).max().unwrap_or(0).max(1) as f64;
    let mut out = format!(
        "<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" role=\"img\" font-size=\"13\">\n\
         <text x=\"{}\" y=\"14\" text-anchor=\"end\" fill=\"#616e7c\" font-size=\"11\">from ↓  to →</text>\n",
        label_w - 10.0
    );
    for (i, name) in names.iter().enumerate() {
        let x = label_w + (i as f64 + 0.5) * cell_w;
        let y = head_h + (i as f64 + 0.5) * cell_h + 5.0;
        w!(
            out,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"600\">{}</text>\n\
             <text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\" font-weight=\"600\">{}</text>\n",
            head_h - 12.0,
            esc(&truncate(name, 16)),
            label_w - 10.0,
            esc(&truncate(name, 20))
        );
    }
    for (r, src) in names.iter().enumerate() {
        for (c, dst) in names.iter().enumerate() {
            let bytes: u64 = regions.iter().filter(|p| p.src == *src && p.dst == *dst).map(|p| p.bytes).sum();
            let x = label_w + c as f64 * cell_w;
            let y = head_h + r as f64 * cell_h;
            let t = if bytes == 0 { 0.0 } else { (1.0 + bytes as f64).ln() / (1.0 + max).ln() };
            let (fill, ink) = if bytes == 0 {
                ("#f5f7fa".to_string(), "#9aa5b1")
            } else {
                (mix((232, 241, 251), (22, 72, 138), t), if t > 0.55 { "#fff" } else { "#1f2933" })
            };
            let text = if bytes == 0 { "–".to_string() } else { human_bytes(bytes) };
            w!(
                out,
                "<g><title>{} → {}: {}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"4\" fill=\"{fill}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{ink}\">{text}</text></g>\n",
                esc(src),
                esc(dst),
                human_bytes(bytes),
                x + 2.0,
                y + 2.0,
                cell_w - 4.0,
                cell_h - 4.0,
                x + cell_w / 2.0,
                y + cell_h / 2.0 + 5.0
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

/// Vertical bars per 5-minute bucket over the run's whole simulated span,
/// so quiet stretches show as gaps rather than being squeezed out.
fn timeline(buckets: &[(i64, u64)], start: i64, end: i64) -> String {
    if buckets.is_empty() {
        return "<p class=\"empty\">No timeline recorded.</p>\n".to_string();
    }
    let t0 = buckets.iter().map(|b| b.0).min().unwrap_or(start).min(start);
    let t1 = buckets
        .iter()
        .map(|b| b.0 + TIMELINE_BUCKET_SECONDS)
        .max()
        .unwrap_or(end)
        .max(end)
        .max(t0 + TIMELINE_BUCKET_SECONDS);
    let (left, right, top, bottom, height) = (56.0, 32.0, 12.0, 44.0, 240.0);
    let plot_w = CHART_W - left - right;
    let plot_h = height - top - bottom;
    let x = |t: i64| left + plot_w * (t - t0) as f64 / (t1 - t0) as f64;
    let peak = buckets.iter().map(|b| b.1).max().unwrap_or(0);
    let step = nice_step(peak as f64 / 4.0).max(1.0);
    let y_max = (peak as f64 / step).ceil().max(1.0) * step;
    let y = |v: f64| top + plot_h * (1.0 - v / y_max);

    let mut out = format!(
        "<svg viewBox=\"0 0 {CHART_W} {height}\" width=\"{CHART_W}\" role=\"img\" font-size=\"12\" fill=\"#616e7c\">\n"
    );
    let mut v = 0.0;
    while v <= y_max + 1e-9 {
        w!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#e4e7eb\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            CHART_W - right,
            y(v),
            y(v),
            left - 8.0,
            y(v) + 4.0,
            thousands(v as u64)
        );
        v += step;
    }
    for &(t, n) in buckets {
        let (x0, x1) = (x(t), x(t + TIMELINE_BUCKET_SECONDS));
        w!(
            out,
            "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{BAD}\">\
             <title>{}: {} misattributed</title></rect>\n",
            y(n as f64),
            (x1 - x0 - 1.0).max(1.5),
            y(0.0) - y(n as f64),
            utc(t),
            thousands(n)
        );
    }
    let base = y(0.0);
    w!(out, "<line x1=\"{left}\" x2=\"{}\" y1=\"{base:.1}\" y2=\"{base:.1}\" stroke=\"#9aa5b1\"/>\n", CHART_W - right);
    let tick = time_step(t1 - t0);
    let mut t = (t0 + tick - 1).div_euclid(tick) * tick;
    let multi_day = t1 - t0 > 86_400;
    while t <= t1 {
        let label = if multi_day || t == (t0 + tick - 1).div_euclid(tick) * tick {
            utc_short(t, true)
        } else {
            utc_short(t, false)
        };
        w!(
            out,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{base:.1}\" y2=\"{1:.1}\" stroke=\"#9aa5b1\"/>\
             <text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\">{label}</text>\n",
            x(t),
            base + 5.0,
            base + 20.0
        );
        t += tick;
    }
    w!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">flow time (UTC)</text>\n</svg>\n",
        left + plot_w / 2.0,
        height - 4.0
    );
    out
}

// ---- formatting helpers ----

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// Cuts on characters, not bytes (names may be any UTF-8); full names stay
/// in the SVG `<title>` tooltips.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Decimal units (1 KB = 1000 B), three significant digits.
/// Bytes in decimal units (`1.2 MB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 999.5 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ if v < 9.995 => format!("{v:.2} {}", UNITS[unit]),
        _ if v < 99.95 => format!("{v:.1} {}", UNITS[unit]),
        _ => format!("{v:.0} {}", UNITS[unit]),
    }
}

/// Two decimals, but never rounds a nonzero share to 0% or a partial one to
/// 100%: one misattribution in a million must still show.
fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        return "–".to_string();
    }
    let p = 100.0 * n as f64 / of as f64;
    match n {
        0 => "0%".to_string(),
        _ if n == of => "100%".to_string(),
        _ if p < 0.01 => "&lt;0.01%".to_string(),
        _ if p > 99.99 => "&gt;99.99%".to_string(),
        _ => format!("{p:.2}%"),
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn datetime(ts: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(ts).ok()
}

fn utc(ts: i64) -> String {
    utc_part(ts, format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"))
}

fn utc_part(ts: i64, fmt: &[BorrowedFormatItem<'_>]) -> String {
    datetime(ts).and_then(|d| d.format(fmt).ok()).unwrap_or_else(|| ts.to_string())
}

fn utc_short(ts: i64, with_date: bool) -> String {
    if with_date {
        utc_part(ts, format_description!("[month]-[day] [hour]:[minute]"))
    } else {
        utc_part(ts, format_description!("[hour]:[minute]"))
    }
}

fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The smallest of 1, 2, 5 × 10^k at least `v`.
fn nice_step(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|f| f * mag).find(|s| *s >= v).unwrap_or(10.0 * mag)
}

/// A clock-friendly tick step giving at most about eight ticks.
fn time_step(span: i64) -> i64 {
    const STEPS: [i64; 11] = [300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800];
    STEPS.into_iter().find(|s| span / s <= 8).unwrap_or(86_400 * (span / 86_400 / 8 + 1))
}

fn mix(a: (u8, u8, u8), b: (u8, u8, u8), t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let m = |x: u8, y: u8| (x as f64 + (y as f64 - x as f64) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", m(a.0, b.0), m(a.1, b.1), m(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::summary::{Rate, Setup};

    fn counts(correct: u64, unattributed: u64, misattributed: u64) -> Counts {
        Counts { correct, unattributed, misattributed, knowable: correct + misattributed + 3, knowable_unattributed: 3 }
    }

    fn pair(src: &str, dst: &str, bytes: u64) -> Pair {
        Pair { src: src.into(), dst: dst.into(), flows: bytes / 1000 + 1, bytes }
    }

    fn summary(misattributed: u64) -> Summary {
        let start = 1_700_000_000;
        let score = counts(19_990 - misattributed, 10, misattributed);
        let mut by_side = BTreeMap::new();
        by_side.insert("src".to_string(), counts(9_995 - misattributed, 5, misattributed));
        by_side.insert("dst".to_string(), counts(9_995, 5, 0));
        let mut by_attribution = BTreeMap::new();
        by_attribution.insert("owner".to_string(), counts(15_000, 0, misattributed));
        by_attribution.insert("unattributed".to_string(), counts(0, 10, 0));
        let mut by_truth = BTreeMap::new();
        by_truth.insert("instance".to_string(), counts(14_000, 10, misattributed));
        let mut causes = BTreeMap::new();
        let mut timeline = Vec::new();
        let mut samples = Vec::new();
        if misattributed > 0 {
            causes.insert("late_delete".to_string(), misattributed);
            timeline.push((start + 600, misattributed));
            samples.push(Misattribution {
                flow_time: start + 650,
                processed_at: start + 700,
                side: "src".into(),
                address: "10.0.1.7".into(),
                truth: "<script>alert(1)</script> (eni-1)".into(),
                reported: "billing & co (eni-2)".into(),
                cause: "late_delete".into(),
                events: vec!["terminate eni-2 at 00:10, delivered 00:12".into()],
            });
        }
        Summary {
            setup: Setup {
                seed: 42,
                flows: 10_000,
                churn: 0.5,
                delays: "realistic".into(),
                start,
                end: start + 3600,
                accounts: 2,
                regions: 2,
                vpcs: 3,
                apps: 5,
                instances: 40,
                standalone_enis: 4,
                events_generated: 120,
                events_delivered: 118,
                events_lost: 2,
                reconciles: 1,
                compactions: 1,
            },
            score,
            by_side,
            by_attribution,
            by_truth,
            causes,
            rate: Rate { flows: 10_000, rows: 10_000, elapsed_seconds: 0.5, flows_per_second: 20_000.0 },
            pipeline: Default::default(),
            top_pairs: vec![pair("<script>", "billing & co", 5_000_000), pair("web", "db", 12_000)],
            regions: vec![pair("us-east-1", "us-east-1", 9_000_000), pair("us-east-1", "eu-west-1", 4_000)],
            cross_az: vec![pair("web", "db", 3_000)],
            cross_region: vec![],
            misattribution_timeline: timeline,
            misattributions: samples,
        }
    }

    fn assert_self_contained(html: &str) {
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<svg"));
        assert!(!html.to_lowercase().contains("<script"), "a raw script tag leaked");
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<link") && !html.contains("<img") && !html.contains("url("));
    }

    #[test]
    fn clean_run_shows_scores_and_the_no_misattributions_panel() {
        let html = render(&summary(0));
        assert_self_contained(&html);
        assert!(html.contains("19,990"), "correct count");
        assert!(html.contains(">10<"), "unattributed count");
        assert!(html.contains("No misattributions"));
        assert!(!html.contains("Misattributions over flow time"));
        assert!(html.contains("us-east-1") && html.contains("eu-west-1"));
        assert!(html.contains("<dt>seed</dt><dd>42</dd>"));
        assert!(html.contains("2023-11-14 22:13:20 UTC"), "start in UTC");
        assert!(html.contains("20,000 flows/s"));
        assert!(html.contains("9.00 MB") && html.contains("4.00 KB"));
        assert!(html.contains("No traffic of this kind."), "empty cross-region");
    }

    #[test]
    fn misattributions_turn_the_verdict_red_and_list_samples_escaped() {
        let html = render(&summary(7));
        assert_self_contained(&html);
        assert!(html.contains(&format!("--c:{BAD}")), "red verdict");
        assert!(html.contains("7 flow sides misattributed"));
        assert!(html.contains("19,983"));
        assert!(html.contains("Misattributions over flow time"));
        assert!(html.contains("late_delete"));
        assert!(html.contains("10.0.1.7"));
        assert!(html.contains("terminate eni-2 at 00:10, delivered 00:12"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; (eni-1)"));
        assert!(html.contains("billing &amp; co (eni-2)"));
        assert!(html.contains("&lt;script&gt; → billing &amp; co"));
        assert!(!html.contains("billing & co"));
    }

    #[test]
    fn numbers_read_like_a_person_wrote_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.50 KB");
        assert_eq!(human_bytes(12_345_678), "12.3 MB");
        assert_eq!(human_bytes(999_999_999), "1.00 GB");
        assert_eq!(pct(1, 1_000_000), "&lt;0.01%");
        assert_eq!(pct(999_999, 1_000_000), "&gt;99.99%");
        assert_eq!(pct(1, 4), "25.00%");
        assert_eq!(pct(0, 0), "–");
        assert_eq!(truncate("héllo wörld", 5), "héll…");
        assert_eq!(duration(6 * 3600), "6 h 00 min");
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(time_step(3600), 600);
    }
}
