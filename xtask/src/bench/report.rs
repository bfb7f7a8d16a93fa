//! Summaries of a benchmark run: a table with ratios, JSON for tracking, an SVG chart.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::memory::Memory;
use super::scenarios::Scenario;
use super::variants::{ALL, Variant};
use super::wrk::Measurement;
use super::{Options, Pinning};
use crate::process::output;

#[derive(Debug, Clone)]
pub struct Sample {
    pub variant: Variant,
    pub scenario: &'static str,
    pub round: usize,
    pub result: Measurement,
}

/// The median of the rounds for one variant and scenario.
#[derive(Debug, Clone)]
pub struct Cell {
    pub variant: Variant,
    pub scenario: &'static str,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

pub fn summarise(samples: &[Sample], scenarios: &[Scenario]) -> Vec<Cell> {
    let mut cells = Vec::new();
    for scenario in scenarios {
        for variant in ALL {
            let runs: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.variant == *variant && s.scenario == scenario.name)
                .collect();
            if runs.is_empty() {
                continue;
            }
            cells.push(Cell {
                variant: *variant,
                scenario: scenario.name,
                requests_per_second: median(
                    runs.iter().map(|s| s.result.requests_per_second).collect(),
                ),
                p50_ms: median(runs.iter().map(|s| s.result.p50_ms).collect()),
                p99_ms: median(runs.iter().map(|s| s.result.p99_ms).collect()),
                errors: runs.iter().map(|s| s.result.errors).sum(),
            });
        }
    }
    cells
}

fn cell<'a>(cells: &'a [Cell], scenario: &str, variant: Variant) -> Option<&'a Cell> {
    cells
        .iter()
        .find(|c| c.scenario == scenario && c.variant == variant)
}

fn ratio(cells: &[Cell], c: &Cell, to: Variant) -> Option<f64> {
    cell(cells, c.scenario, to).map(|base| c.requests_per_second / base.requests_per_second)
}

/// What was measured, where and how.
#[derive(Debug, Clone)]
pub struct Meta {
    pub date: String,
    pub cpu: String,
    pub cpus: usize,
    pub envoy: String,
    pub filter_bytes: u64,
    pub noop_bytes: u64,
    pub noop_dynamic_bytes: u64,
    pub dynamic_bytes: u64,
    pub rounds: usize,
    pub seconds: u64,
    pub connections: u32,
    pub pinned: bool,
}

impl Meta {
    pub fn collect(options: &Options, pinning: &Pinning) -> Self {
        let cpu = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let size = |name: &str| {
            fs::metadata(crate::paths::dist().join(name))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        Self {
            date: output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
                .map(|d| d.trim().to_string())
                .unwrap_or_default(),
            cpu,
            cpus: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            envoy: crate::envoy::ensure()
                .ok()
                .and_then(|b| crate::envoy::version_of(&b))
                .unwrap_or_default(),
            filter_bytes: size("hardening.wasm"),
            noop_bytes: size("noop.wasm"),
            noop_dynamic_bytes: size(&crate::native::NOOP_DYNAMIC.file_name()),
            dynamic_bytes: size(&crate::native::FILTER.file_name()),
            rounds: options.rounds,
            seconds: options.duration.as_secs(),
            connections: options.connections,
            pinned: pinning.envoy_cpu.is_some(),
        }
    }
}

/// The module a variant loads, and its size in bytes.
fn module_bytes(meta: &Meta, variant: Variant) -> Option<u64> {
    match variant {
        Variant::Filter => Some(meta.filter_bytes),
        Variant::NoopWasm => Some(meta.noop_bytes),
        Variant::NoopDynamic | Variant::HeadersDynamic => Some(meta.noop_dynamic_bytes),
        Variant::Dynamic => Some(meta.dynamic_bytes),
        Variant::Bare | Variant::Native => None,
    }
}

pub fn table(cells: &[Cell], memory: &[Memory], meta: &Meta) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} · {} ({} CPUs) · Envoy --concurrency 1{} · wrk -t1 -c{} -d{}s · median of {} alternated rounds",
        meta.date,
        meta.cpu,
        meta.cpus,
        if meta.pinned {
            " on CPU 0, wrk on CPU 1"
        } else {
            " (not pinned)"
        },
        meta.connections,
        meta.seconds,
        meta.rounds
    );
    let _ = writeln!(
        out,
        "module sizes: filter {} bytes, noop {} bytes, noop-dynamic {} bytes, dynamic {} bytes\n",
        meta.filter_bytes, meta.noop_bytes, meta.noop_dynamic_bytes, meta.dynamic_bytes
    );
    let _ = writeln!(
        out,
        "| scenario | variant | requests/s | p50 ms | p99 ms | vs bare | vs native | vs noop-wasm | errors |"
    );
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for c in cells {
        let fmt_ratio = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {} |",
            c.scenario,
            c.variant.name(),
            c.requests_per_second,
            c.p50_ms,
            c.p99_ms,
            fmt_ratio(ratio(cells, c, Variant::Bare)),
            fmt_ratio(ratio(cells, c, Variant::Native)),
            fmt_ratio(ratio(cells, c, Variant::NoopWasm)),
            c.errors
        );
    }
    memory_table(&mut out, memory, meta);
    out
}

/// Envoy's memory per variant and number of workers (admin `/memory`, after a warm-up).
fn memory_table(out: &mut String, memory: &[Memory], meta: &Meta) {
    if memory.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n| variant | module bytes | workers | allocated MB | heap MB | resident MB | started in s |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mb = |bytes: u64| bytes as f64 / 1_000_000.0;
    for m in memory {
        let module = module_bytes(meta, m.variant).map_or("-".to_string(), |b| b.to_string());
        let _ = writeln!(
            out,
            "| {} | {module} | {} | {:.1} | {:.1} | {} | {:.1} |",
            m.variant.name(),
            m.workers,
            mb(m.allocated),
            mb(m.heap_size),
            m.resident
                .map_or("-".to_string(), |r| format!("{:.1}", mb(r))),
            m.start_seconds
        );
    }
}

pub fn write_json(
    path: &Path,
    cells: &[Cell],
    samples: &[Sample],
    memory: &[Memory],
    meta: &Meta,
) -> crate::Result<()> {
    let summary: Vec<Value> = cells
        .iter()
        .map(|c| {
            json!({
                "scenario": c.scenario,
                "variant": c.variant.name(),
                "requests_per_second": c.requests_per_second,
                "p50_ms": c.p50_ms,
                "p99_ms": c.p99_ms,
                "ratio_to_bare": ratio(cells, c, Variant::Bare),
                "ratio_to_native": ratio(cells, c, Variant::Native),
                "ratio_to_noop_wasm": ratio(cells, c, Variant::NoopWasm),
                "errors": c.errors,
            })
        })
        .collect();
    let raw: Vec<Value> = samples
        .iter()
        .map(|s| {
            json!({
                "scenario": s.scenario,
                "variant": s.variant.name(),
                "round": s.round,
                "requests_per_second": s.result.requests_per_second,
                "p50_ms": s.result.p50_ms,
                "p99_ms": s.result.p99_ms,
                "requests": s.result.requests,
                "errors": s.result.errors,
            })
        })
        .collect();
    let memory: Vec<Value> = memory
        .iter()
        .map(|m| {
            json!({
                "variant": m.variant.name(),
                "module_bytes": module_bytes(meta, m.variant),
                "workers": m.workers,
                "allocated_bytes": m.allocated,
                "heap_bytes": m.heap_size,
                "resident_bytes": m.resident,
                "start_seconds": m.start_seconds,
            })
        })
        .collect();
    let doc = json!({
        "date": meta.date,
        "machine": {"cpu": meta.cpu, "cpus": meta.cpus, "pinned": meta.pinned},
        "envoy": meta.envoy,
        "module_bytes": {"filter": meta.filter_bytes, "noop": meta.noop_bytes, "noop_dynamic": meta.noop_dynamic_bytes, "dynamic": meta.dynamic_bytes},
        "load": {"tool": "wrk", "threads": 1, "connections": meta.connections, "seconds": meta.seconds, "rounds": meta.rounds},
        "summary": summary,
        "memory": memory,
        "samples": raw,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Requests/s relative to `bare`, one group of bars per scenario.
pub fn write_svg(path: &Path, cells: &[Cell]) -> crate::Result<()> {
    let scenarios: Vec<&str> = {
        let mut seen = Vec::new();
        for c in cells {
            if !seen.contains(&c.scenario) {
                seen.push(c.scenario);
            }
        }
        seen
    };
    let colors = ["#9e9e9e", "#4e79a7", "#f28e2b", "#e15759", "#59a14f"];
    let (bar, gap, top, height, left) = (22.0, 28.0, 40.0, 220.0, 50.0);
    let group = bar * ALL.len() as f64 + gap;
    let width = left + group * scenarios.len() as f64 + 20.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n",
        top + height + 60.0
    );
    let _ = writeln!(
        svg,
        "<text x=\"{left}\" y=\"20\" font-size=\"13\">requests/s relative to bare Envoy (higher is better)</text>"
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = top + height * (1.0 - tick);
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{width}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"8\" y=\"{}\">{tick:.2}</text>",
            y + 4.0
        );
    }
    for (g, scenario) in scenarios.iter().enumerate() {
        let x0 = left + gap / 2.0 + group * g as f64;
        for (i, variant) in ALL.iter().enumerate() {
            let Some(c) = cell(cells, scenario, *variant) else {
                continue;
            };
            let r = ratio(cells, c, Variant::Bare).unwrap_or(0.0).min(1.2);
            let h = height * r;
            let x = x0 + bar * i as f64;
            let _ = writeln!(
                svg,
                "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{h}\" fill=\"{}\"><title>{} {}: {r:.2}</title></rect>",
                top + height - h,
                bar - 2.0,
                colors[i % colors.len()],
                scenario,
                variant.name()
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{x0}\" y=\"{}\">{scenario}</text>",
            top + height + 16.0
        );
    }
    for (i, variant) in ALL.iter().enumerate() {
        let x = left + 110.0 * i as f64;
        let y = top + height + 40.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{y}\">{}</text>",
            y - 10.0,
            colors[i % colors.len()],
            x + 16.0,
            variant.name()
        );
    }
    svg.push_str("</svg>\n");
    fs::write(path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
