//! `tusgate bench chart`: `benches/compare.sh`'s results as an SVG chart, for people who
//! compare peers by looking. It reads the same `results.jsonl` the script's table is made
//! from (one line per run: `peer`, `workload`, `round` and the `--json` report, or `null` for
//! a run that failed) and draws, for each upload workload with a throughput (one PATCH,
//! chunked, parallel, small), every peer's median as a ratio to tusd's median (top panel) and
//! to the limit's (bottom panel), with the min–max of the peer's rounds, over the same median,
//! as the error bar. The numbers are the table's ratios, so chart and table never disagree.
//! The axis is logarithmic and bars start at 1.0 (the reference): up is faster, down slower,
//! and 2× and 0.5× lie equally far from it.
//!
//! Drawn with plotters' SVG backend only: text is left to the viewer's fonts (no font
//! library), and the output depends on the input alone, byte for byte.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use plotters::coord::combinators::BindKeyPoints as _;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::units::format_bytes;

/// `tusgate bench chart RESULTS -o SVG`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ChartArgs {
    /// The results of `benches/compare.sh` (`$SCRATCH/results.jsonl`).
    #[arg(value_name = "RESULTS.jsonl")]
    pub(crate) results: PathBuf,
    /// Where to write the SVG.
    #[arg(short, long, value_name = "SVG")]
    pub(crate) output: PathBuf,
}

/// Writes the chart; exit status 1 when the results cannot be read or hold nothing to draw.
pub(crate) fn run(name: &str, args: &ChartArgs) -> ExitCode {
    let result = std::fs::read_to_string(&args.results)
        .map_err(|e| format!("cannot read {}: {e}", args.results.display()))
        .and_then(|text| render(&text))
        .and_then(|svg| {
            std::fs::write(&args.output, svg)
                .map_err(|e| format!("cannot write {}: {e}", args.output.display()))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name} chart: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The upload workloads with a throughput, in the table's order, and the report field each
/// is measured by.
const WORKLOADS: [(&str, &str, &str); 4] = [
    ("single", "mib_per_s", "MiB/s"),
    ("chunked", "mib_per_s", "MiB/s"),
    ("parallel", "mib_per_s", "MiB/s"),
    ("small", "uploads_per_s", "uploads/s"),
];

/// Known peers in the table's order: (compare.sh's name, shown as, colour). Others follow in
/// the order they first appear, in grey.
const PEERS: [(&str, &str, RGBColor); 7] = [
    ("limit", "limit (sink)", RGBColor(120, 120, 120)),
    ("limit_fsync", "limit + fsync", RGBColor(70, 70, 70)),
    ("tusgate", "tusgate (default, fsync)", RGBColor(31, 90, 180)),
    (
        "tusgate_never",
        "tusgate -fsync=never",
        RGBColor(120, 170, 230),
    ),
    ("tusd", "tusd 2.10", RGBColor(230, 120, 20)),
    ("tusnode", "@tus/server", RGBColor(50, 150, 70)),
    ("rustus", "rustus", RGBColor(180, 50, 50)),
];

/// The references, one panel each: (peer, how the axis names it).
const REFERENCES: [(&str, &str); 2] = [("tusd", "tusd 2.10"), ("limit", "the limit (sink)")];

const WIDTH: u32 = 1100;
const PANEL_HEIGHT: u32 = 400;
const TITLE_HEIGHT: u32 = 40;
const LEGEND_HEIGHT: u32 = 30;

/// The runs of one results file: per workload and peer, the values of its rounds.
#[derive(Debug, Default)]
struct Results {
    values: BTreeMap<(String, String), Vec<f64>>,
    /// Peers in drawing order.
    peers: Vec<String>,
    /// A shape per workload (`8 × 128 MiB`), from its first report.
    shapes: BTreeMap<String, String>,
    rounds: u64,
}

impl Results {
    fn parse(text: &str) -> Result<Results, String> {
        let mut results = Results::default();
        let mut seen = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let run: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", n + 1))?;
            let (Some(peer), Some(workload)) = (run["peer"].as_str(), run["workload"].as_str())
            else {
                return Err(format!("line {}: no peer or workload", n + 1));
            };
            results.rounds = results.rounds.max(run["round"].as_u64().unwrap_or(0));
            if !seen.iter().any(|p| p == peer) {
                seen.push(peer.to_owned());
            }
            let Some(&(_, field, _)) = WORKLOADS.iter().find(|(w, _, _)| *w == workload) else {
                continue;
            };
            let report = &run["result"];
            if let Some(value) = report[field].as_f64() {
                results
                    .values
                    .entry((workload.to_owned(), peer.to_owned()))
                    .or_default()
                    .push(value);
                results
                    .shapes
                    .entry(workload.to_owned())
                    .or_insert_with(|| shape(workload, report));
            }
        }
        results.peers = PEERS
            .iter()
            .map(|(p, _, _)| (*p).to_owned())
            .filter(|p| seen.contains(p))
            .chain(
                seen.iter()
                    .filter(|p| !PEERS.iter().any(|k| k.0 == *p))
                    .cloned(),
            )
            .filter(|p| results.values.keys().any(|(_, peer)| peer == p))
            .collect();
        Ok(results)
    }

    fn of(&self, workload: &str, peer: &str) -> Option<&[f64]> {
        self.values
            .get(&(workload.to_owned(), peer.to_owned()))
            .map(Vec::as_slice)
            .filter(|v| !v.is_empty())
    }

    /// The workloads (index into [`WORKLOADS`]) a panel has a reference median for.
    fn workloads_against(&self, reference: &str) -> Vec<usize> {
        (0..WORKLOADS.len())
            .filter(|&i| self.of(WORKLOADS[i].0, reference).is_some())
            .collect()
    }
}

/// `8 × 128 MiB`, `1 GiB in 8 MiB PATCHes`, `2000 × 10 KiB, c=16`.
fn shape(workload: &str, report: &serde_json::Value) -> String {
    let size = report["size"]
        .as_u64()
        .map_or_else(String::new, format_bytes);
    let count = report["count"].as_u64().unwrap_or(1);
    let chunk = report["chunk"]
        .as_u64()
        .filter(|&c| Some(c) < report["size"].as_u64());
    let concurrency = report["concurrency"].as_u64().unwrap_or(1);
    let mut text = if count == 1 {
        size
    } else {
        format!("{count} × {size}")
    };
    if let Some(chunk) = chunk {
        text += &format!(" in {} PATCHes", format_bytes(chunk));
    } else if workload != "small" && count == 1 {
        text += ", one PATCH";
    }
    if workload == "small" {
        text += &format!(", c={concurrency}");
    }
    text
}

/// The median (the mean of the middle two for an even count, as Python's `statistics`).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// One bar: (peer index, workload position, median ratio, lowest, highest).
type Bar = (usize, usize, f64, f64, f64);

fn bars(results: &Results, reference: &str, workloads: &[usize]) -> Vec<Bar> {
    let mut out = Vec::new();
    for (position, &w) in workloads.iter().enumerate() {
        let workload = WORKLOADS[w].0;
        let Some(base) = results.of(workload, reference).map(median) else {
            continue;
        };
        if base <= 0.0 {
            continue;
        }
        for (p, peer) in results.peers.iter().enumerate() {
            if let Some(values) = results.of(workload, peer) {
                let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                out.push((p, position, median(values) / base, lo / base, hi / base));
            }
        }
    }
    out
}

/// Tick values for a log axis from `bottom` to `top`: the densest of a few "nice" series
/// that gives at most 12, and always 1.0 (the reference).
fn ticks(bottom: f64, top: f64) -> Vec<f64> {
    const SERIES: [&[f64]; 4] = [
        &[1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0],
        &[1.0, 1.5, 2.0, 3.0, 5.0],
        &[1.0, 2.0, 5.0],
        &[1.0],
    ];
    let mut chosen = vec![1.0];
    for series in SERIES {
        let mut points = Vec::new();
        for exponent in -4..=4 {
            // Divided rather than multiplied by 0.1…: 6 / 10 is the double nearest 0.6, as
            // its label must print.
            let at = |m: &f64| match exponent {
                e if e < 0 => m / 10f64.powi(-e),
                e => m * 10f64.powi(e),
            };
            points.extend(series.iter().map(at).filter(|v| (bottom..=top).contains(v)));
        }
        if points.len() <= 12 {
            chosen = points;
            break;
        }
    }
    if !chosen.contains(&1.0) {
        chosen.push(1.0);
    }
    chosen.sort_by(f64::total_cmp);
    chosen
}

fn peer_style(peer: &str, index: usize) -> (String, RGBColor) {
    match PEERS.iter().find(|(p, _, _)| *p == peer) {
        Some((_, label, color)) => ((*label).to_owned(), *color),
        None => {
            let grey = 90 + u8::try_from(index * 25 % 120).unwrap_or(0);
            (peer.to_owned(), RGBColor(grey, grey, grey))
        }
    }
}

/// The SVG of the chart, or why there is none.
fn render(text: &str) -> Result<String, String> {
    let results = Results::parse(text)?;
    let panels: Vec<_> = REFERENCES
        .iter()
        .map(|&(peer, label)| (peer, label, results.workloads_against(peer)))
        .filter(|(_, _, workloads)| !workloads.is_empty())
        .collect();
    if panels.is_empty() {
        return Err(
            "no upload workload (single, chunked, parallel, small) was measured for tusd or the limit"
                .into(),
        );
    }
    let height = TITLE_HEIGHT + LEGEND_HEIGHT + PANEL_HEIGHT * panels.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let rounds = match results.rounds {
            1 => "1 round".to_owned(),
            n => format!("median of {n} interleaved rounds"),
        };
        let root = root
            .titled(
                &format!("benches/compare.sh: upload throughput relative to tusd and to the limit ({rounds})"),
                ("sans-serif", 20),
            )
            .map_err(draw_error)?;
        let (legend, root) = root.split_vertically(LEGEND_HEIGHT);
        draw_legend(&legend, &results)?;
        let areas = root.split_evenly((panels.len(), 1));
        for ((reference, label, workloads), area) in panels.iter().zip(&areas) {
            draw_panel(area, &results, reference, label, workloads)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

fn draw_error(e: impl std::fmt::Display) -> String {
    format!("cannot draw the chart: {e}")
}

/// One row under the title: a swatch and a name per peer, then the reference line. Drawn by
/// hand rather than as plotters' series labels, which sit inside a plot and cover bars.
fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    results: &Results,
) -> Result<(), String> {
    let font = ("sans-serif", 14).into_font().color(&BLACK);
    let mut x = 80;
    for (p, peer) in results.peers.iter().enumerate() {
        let (label, color) = peer_style(peer, p);
        area.draw(&Rectangle::new([(x, 8), (x + 14, 22)], color.filled()))
            .map_err(draw_error)?;
        // The SVG viewer sets the text; this estimate of its width only spaces the entries.
        let width = i32::try_from(label.chars().count() * 6).unwrap_or(200);
        area.draw(&Text::new(label, (x + 20, 8), font.clone()))
            .map_err(draw_error)?;
        x += width + 44;
    }
    area.draw(&PathElement::new(
        [(x, 15), (x + 8, 15)],
        BLACK.stroke_width(1),
    ))
    .map_err(draw_error)?;
    area.draw(&PathElement::new(
        [(x + 12, 15), (x + 20, 15)],
        BLACK.stroke_width(1),
    ))
    .map_err(draw_error)?;
    area.draw(&Text::new("1.0: the reference's median", (x + 26, 8), font))
        .map_err(draw_error)?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    results: &Results,
    reference: &str,
    reference_label: &str,
    workloads: &[usize],
) -> Result<(), String> {
    let bars = bars(results, reference, workloads);
    // Ratios are multiplicative: a log axis puts 0.5× as far below 1.0 as 2× above it, and one
    // peer at 10× does not flatten the others' differences near 1.0.
    let top = bars.iter().map(|b| b.4).fold(1.25f64, f64::max) * 1.3;
    let bottom = bars.iter().map(|b| b.3).fold(0.8f64, f64::min) / 1.3;
    let bottom = bottom.max(top / 1e4);
    let n = workloads.len() as f64;
    let y_label = |y: &f64| format!("{y}×");
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("ratio to {reference_label}: peer's median ÷ {reference}'s median; whiskers: min–max of the peer's rounds"),
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0f64..n,
            (bottom..top).log_scale().with_key_points(ticks(bottom, top)),
        )
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_max_light_lines(1)
        .y_label_formatter(&y_label)
        .y_desc(format!("× {reference_label}"))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(draw_error)?;

    let peers = results.peers.len().max(1) as f64;
    let slot = 0.8 / peers;
    for (p, peer) in results.peers.iter().enumerate() {
        let (_, color) = peer_style(peer, p);
        let mine: Vec<&Bar> = bars.iter().filter(|b| b.0 == p).collect();
        if mine.is_empty() {
            continue;
        }
        let left = |b: &Bar| b.1 as f64 + 0.1 + slot * p as f64;
        chart
            .draw_series(mine.iter().map(|b| {
                let x = left(b);
                // From the reference (1.0) up or down to the median.
                Rectangle::new(
                    [
                        (x + slot * 0.1, b.2.max(1.0)),
                        (x + slot * 0.9, b.2.min(1.0)),
                    ],
                    color.mix(0.85).filled(),
                )
            }))
            .map_err(draw_error)?;
        chart
            .draw_series(mine.iter().map(|b| {
                let x = left(b) + slot / 2.0;
                ErrorBar::new_vertical(x, b.3, b.2, b.4, BLACK.stroke_width(1), 8)
            }))
            .map_err(draw_error)?;
        chart
            .draw_series(mine.iter().map(|b| {
                // Beyond the bar's end: above a bar that rises, below one that falls.
                let x = left(b) + slot / 2.0;
                let (at, dy, v) = if b.2 >= 1.0 {
                    (b.4, -4, VPos::Bottom)
                } else {
                    (b.3, 4, VPos::Top)
                };
                EmptyElement::at((x, at))
                    + Text::new(
                        format!("{:.2}", b.2),
                        (0, dy),
                        ("sans-serif", 11)
                            .into_font()
                            .color(&BLACK)
                            .pos(Pos::new(HPos::Center, v)),
                    )
            }))
            .map_err(draw_error)?;
    }
    // The workloads under their groups of bars. Drawn by hand: plotters' own labels fall where
    // its tick algorithm puts them, and key points of our choosing do not combine with f64
    // axes in plotters 0.3.
    let base = area.get_base_pixel();
    for (i, &w) in workloads.iter().enumerate() {
        let (workload, _, unit) = WORKLOADS[w];
        let shape = results.shapes.get(workload).map_or("", String::as_str);
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        area.draw(&Text::new(
            format!("{workload}: {shape} ({unit})"),
            (x - base.0, y - base.1 + 8),
            ("sans-serif", 13)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(draw_error)?;
    }
    // The reference itself: 1.0.
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 1.0), (n, 1.0)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(draw_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rounds of four peers, a failed run, a workload the chart leaves out (slow) and a
    /// download, as compare.sh writes them.
    fn fixture() -> String {
        let mut lines = Vec::new();
        let run = |peer: &str, workload: &str, round: u32, mib: f64, ups: f64| {
            format!(
                r#"{{"peer":"{peer}","workload":"{workload}","round":{round},"result":{{"ok":true,"mib_per_s":{mib},"uploads_per_s":{ups},"size":67108864,"chunk":8388608,"count":1,"concurrency":1}}}}"#
            )
        };
        for round in 1..=2 {
            let r = f64::from(round);
            for (peer, speed) in [
                ("limit", 2000.0),
                ("tusgate", 1200.0),
                ("tusgate_never", 1800.0),
                ("tusd", 1000.0),
            ] {
                for workload in ["single", "chunked", "parallel", "small", "slow"] {
                    lines.push(run(
                        peer,
                        workload,
                        round,
                        speed + 10.0 * r,
                        speed * 4.0 + r,
                    ));
                }
            }
        }
        lines.push(r#"{"peer":"tusd","workload":"single","round":3,"result":null}"#.into());
        lines.push(run("nginx", "dl_1g", 1, 3000.0, 0.0));
        lines.join("\n") + "\n"
    }

    #[test]
    fn chart_names_every_workload_and_peer() {
        let svg = render(&fixture()).expect("draws");
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in [
            "single: 64 MiB in 8 MiB PATCHes (MiB/s)",
            "chunked:",
            "parallel:",
            "small:",
            "limit (sink)",
            "tusgate (default, fsync)",
            "tusgate -fsync=never",
            "tusd 2.10",
            "× tusd 2.10",
            "× the limit (sink)",
        ] {
            assert!(svg.contains(text), "{text:?} is missing");
        }
        assert!(
            !svg.contains("slow:"),
            "slow is rate-bound: no ratio to draw"
        );
        assert!(!svg.contains("nginx"), "downloads are not upload workloads");
        // tusgate's single-PATCH median (1215) over tusd's (1015), as the table's ratio.
        assert!(svg.contains("\n1.20\n"), "tusgate ÷ tusd is labelled");
        assert_eq!(svg, render(&fixture()).expect("draws"), "deterministic");
    }

    #[test]
    fn ratios_are_the_tables() {
        let results = Results::parse(&fixture()).expect("parses");
        assert_eq!(results.peers, ["limit", "tusgate", "tusgate_never", "tusd"]);
        assert_eq!(results.rounds, 3);
        let against_tusd = bars(&results, "tusd", &[0]);
        let tusgate = against_tusd.iter().find(|b| b.0 == 1).expect("tusgate");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(tusgate.2, 1215.0 / 1015.0));
        assert!(close(tusgate.3, 1210.0 / 1015.0) && close(tusgate.4, 1220.0 / 1015.0));
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(ticks(0.5, 2.2), [0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0]);
        assert_eq!(
            ticks(0.05, 15.0),
            [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
        );
    }

    #[test]
    fn nothing_to_compare_is_an_error() {
        assert!(render("").is_err());
        let only_tusgate =
            r#"{"peer":"tusgate","workload":"single","round":1,"result":{"mib_per_s":1.0}}"#;
        assert!(render(only_tusgate).is_err());
        assert!(render("not json").is_err());
        // Without tusd, one panel against the limit.
        let svg = render(
            "{\"peer\":\"limit\",\"workload\":\"small\",\"round\":1,\"result\":{\"uploads_per_s\":10.0}}\n\
             {\"peer\":\"tusgate\",\"workload\":\"small\",\"round\":1,\"result\":{\"uploads_per_s\":5.0}}",
        )
        .expect("draws");
        assert!(svg.contains("× the limit (sink)") && !svg.contains("× tusd"));
    }
}
