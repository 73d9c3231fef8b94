//! `--report FILE.html|svg`: a picture of the run, drawn with plotters' SVG
//! backend — throughput over the measured window (one line per run, one
//! colour per implementation) and the latency percentiles of each
//! implementation (its runs' histograms added). `.svg` writes the picture
//! alone; `.html` a page with the scenario, a table of medians and the
//! picture inline (no script, no external resource: any browser shows it).

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::args::Args;
use crate::report::{self, RunResult};
use crate::{Impl, Mode};

const SIZE: (u32, u32) = (960, 760);
/// The percentiles drawn (the last, 1.0, is the maximum).
const QUANTILES: [(f64, &str); 6] = [
    (0.5, "p50"),
    (0.9, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
    (1.0, "max"),
];

fn colour(imp: Option<Impl>) -> RGBColor {
    match imp {
        Some(Impl::Lunanet) => RGBColor(0x1f, 0x77, 0xb4),
        Some(Impl::Tokio) => RGBColor(0xd6, 0x27, 0x28),
        Some(Impl::Mio) => RGBColor(0x2c, 0xa0, 0x2c),
        None => RGBColor(0x44, 0x44, 0x44),
    }
}

/// Writes the report; the file name's extension chooses the format.
pub fn write_report(path: &Path, a: &Args, runs: &[RunResult]) -> Result<(), String> {
    let svg = svg(a, runs).map_err(|e| format!("--report: drawing failed: {e}"))?;
    let html = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("html" | "htm")
    );
    let body = if html { page(a, runs, &svg) } else { svg };
    std::fs::write(path, body).map_err(|e| format!("--report: writing {}: {e}", path.display()))
}

/// The runs of one implementation, in order of first appearance.
fn by_impl(runs: &[RunResult]) -> Vec<(Option<Impl>, Vec<&RunResult>)> {
    let mut groups: Vec<(Option<Impl>, Vec<&RunResult>)> = Vec::new();
    for r in runs {
        match groups.iter_mut().find(|(imp, _)| *imp == r.imp) {
            Some((_, v)) => v.push(r),
            None => groups.push((r.imp, vec![r])),
        }
    }
    groups
}

fn merged_latency(runs: &[&RunResult]) -> Option<Histogram<u64>> {
    let mut it = runs.iter().filter(|r| !r.client.latency.is_empty());
    let mut h = it.next()?.client.latency.clone();
    for r in it {
        let _ = h.add(&r.client.latency);
    }
    Some(h)
}

fn quantile_us(h: &Histogram<u64>, q: f64) -> f64 {
    let ns = if q >= 1.0 {
        h.max()
    } else {
        h.value_at_quantile(q)
    };
    ns as f64 / 1e3
}

fn svg(a: &Args, runs: &[RunResult]) -> Result<String, Box<dyn std::error::Error>> {
    let unit = report::unit(a.mode);
    let groups = by_impl(runs);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(SIZE.1 / 2);

        // Throughput over time.
        let x_max = runs
            .iter()
            .flat_map(|r| r.samples.points.iter().map(|p| p.0))
            .fold(a.seconds.as_secs_f64(), f64::max);
        let y_max = runs
            .iter()
            .flat_map(|r| bins(&r.samples.points))
            .map(|p| p.1)
            .fold(1.0, f64::max)
            * 1.35; // room above the lines for the legend
        let mut chart = ChartBuilder::on(&top)
            .caption(
                format!("Throughput over the measured window ({unit}/s)"),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .x_desc("seconds into the window")
            .y_desc(format!("{unit}/s"))
            .y_label_formatter(&|v| report::si(*v))
            .draw()?;
        // Each run thin and pale; the median of the runs, bin by bin, bold.
        for (imp, group) in &groups {
            let c = colour(*imp);
            let binned: Vec<Vec<(f64, f64)>> =
                group.iter().map(|r| bins(&r.samples.points)).collect();
            for run in &binned {
                chart.draw_series(LineSeries::new(
                    run.iter().copied(),
                    c.mix(0.3).stroke_width(1),
                ))?;
            }
            let longest = binned.iter().map(Vec::len).max().unwrap_or(0);
            let median: Vec<(f64, f64)> = (0..longest)
                .filter_map(|k| {
                    let rate = report::median(binned.iter().map(|run| run.get(k).map(|p| p.1)))?;
                    Some(((k as f64 + 0.5) * BIN_S, rate))
                })
                .collect();
            let name = format!(
                "{} (median of {} run{})",
                group[0].name(),
                group.len(),
                plural(group.len())
            );
            chart
                .draw_series(LineSeries::new(median, c.stroke_width(3)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;

        // Latency percentiles.
        let hists: Vec<(Option<Impl>, &'static str, Histogram<u64>)> = groups
            .iter()
            .filter_map(|(imp, g)| Some((*imp, g[0].name(), merged_latency(g)?)))
            .collect();
        let (lo, hi) = hists
            .iter()
            .flat_map(|(_, _, h)| QUANTILES.iter().map(move |&(q, _)| quantile_us(h, q)))
            .fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if hists.is_empty() {
            (1.0, 10.0)
        } else {
            ((lo * 0.7).max(0.01), hi * 1.5)
        };
        let what = if a.mode == Mode::Broadcast {
            "tick scheduled -> record received"
        } else {
            "send -> full echo"
        };
        let mut chart = ChartBuilder::on(&bottom)
            .caption(format!("Latency percentiles ({what})"), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(
                -0.2f64..(QUANTILES.len() as f64 - 0.8),
                lo.log10()..hi.log10(),
            )?;
        chart
            .configure_mesh()
            .x_labels(QUANTILES.len())
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    QUANTILES
                        .get(i as usize)
                        .map_or(String::new(), |q| q.1.to_string())
                } else {
                    String::new()
                }
            })
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .y_desc("latency (log scale)")
            .y_labels(8)
            // The axis is log10 of µs, so its labels are evenly spaced.
            .y_label_formatter(&|v| report::dur_ns((10f64.powf(*v) * 1e3) as u64))
            .draw()?;
        for (imp, name, h) in &hists {
            let c = colour(*imp);
            let points: Vec<(f64, f64)> = QUANTILES
                .iter()
                .enumerate()
                .map(|(i, &(q, _))| (i as f64, quantile_us(h, q).log10()))
                .collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(out)
}

/// Width of the bins the throughput samples are averaged over.
const BIN_S: f64 = 0.5;

/// The samples averaged per bin of [`BIN_S`] seconds (bin `k` drawn at its
/// middle); a bin without a sample ends the series.
fn bins(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sums: Vec<(f64, u32)> = Vec::new();
    for &(t, rate) in points {
        let k = (t / BIN_S).max(0.0) as usize;
        if sums.len() <= k {
            sums.resize(k + 1, (0.0, 0));
        }
        sums[k].0 += rate;
        sums[k].1 += 1;
    }
    sums.iter()
        .enumerate()
        .map_while(|(k, &(sum, n))| (n > 0).then(|| ((k as f64 + 0.5) * BIN_S, sum / f64::from(n))))
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(a: &Args, runs: &[RunResult], svg: &str) -> String {
    let unit = report::unit(a.mode);
    let mut rows = String::new();
    for (imp, group) in by_impl(runs) {
        let med =
            |f: &dyn Fn(&RunResult) -> Option<f64>| report::median(group.iter().map(|r| f(r)));
        let hist = merged_latency(&group);
        let q = |q: f64| {
            hist.as_ref().map_or("n/a".into(), |h| {
                report::dur_ns(if q >= 1.0 {
                    h.max()
                } else {
                    h.value_at_quantile(q)
                })
            })
        };
        let _ = writeln!(
            rows,
            "<tr><td style=\"color:#{:02x}{:02x}{:02x}\"><b>{}</b></td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            colour(imp).0,
            colour(imp).1,
            colour(imp).2,
            esc(group[0].name()),
            group.len(),
            med(&|r| Some(r.msgs_per_s())).map_or("n/a".into(), |x| format!("{x:.0}")),
            esc(&q(0.5)),
            esc(&q(0.99)),
            med(&|r| r.server_us_per_msg()).map_or("n/a".into(), |x| format!("{x:.3}")),
            group.iter().map(|r| r.errors()).sum::<u64>(),
        );
    }
    let mut ratios = String::new();
    if a.compare {
        let m = report::medians(&report::ratios(runs));
        let f = |x: Option<f64>| x.map_or("n/a".into(), |x| format!("{x:.3}"));
        let _ = writeln!(
            ratios,
            "<p>Median ratios lunanet / other over {} rounds: {unit}/s vs tokio <b>{}</b>, \
             vs mio <b>{}</b>; server CPU per {} vs tokio <b>{}</b>, vs mio <b>{}</b> \
             (rate: higher is better; CPU: lower is better).</p>",
            a.rounds,
            f(m[0]),
            f(m[1]),
            unit.trim_end_matches('s'),
            f(m[2]),
            f(m[3])
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>lunanet loadtest</title>\n<style>\
         body{{font-family:sans-serif;margin:24px;color:#222;max-width:980px}}\
         table{{border-collapse:collapse}}td,th{{padding:4px 12px;border-bottom:1px solid #ddd;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}\
         </style></head><body>\n\
         <h1>lunanet loadtest</h1>\n<p>{scenario}; {seconds:.1} s measured per run after \
         {warmup:.1} s of warm-up; every payload byte verified.</p>\n\
         <table><tr><th>server</th><th>runs</th><th>median {unit}/s</th><th>p50</th>\
         <th>p99</th><th>median server µs/{one}</th><th>errors</th></tr>\n{rows}</table>\n\
         {ratios}{svg}\n</body></html>\n",
        scenario = esc(&report::scenario(a)),
        seconds = a.seconds.as_secs_f64(),
        warmup = a.warmup.as_secs_f64(),
        one = unit.trim_end_matches('s'),
    )
}
