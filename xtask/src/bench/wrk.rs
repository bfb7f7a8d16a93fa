//! Driving wrk (from Debian's packages) and reading its report.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;

use super::scenarios::Scenario;
use super::{Options, Pinning};

/// One wrk run's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Responses outside 2xx/3xx, and socket errors.
    pub errors: u64,
}

pub fn run(
    wrk: &Path,
    pinning: &Pinning,
    target: SocketAddr,
    scenario: &Scenario,
    options: &Options,
    dir: &Path,
) -> crate::Result<Measurement> {
    let script = dir.join(format!("{}.lua", scenario.name));
    fs::write(&script, lua(scenario))
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let mut cmd = Pinning::command(pinning.load_cpu, wrk);
    cmd.args(["-t1", "--latency"])
        .arg(format!("-c{}", options.connections))
        .arg(format!("-d{}s", options.duration.as_secs().max(1)))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://{target}{}", scenario.path));
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", crate::process::describe(&cmd)))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&text).ok_or_else(|| format!("cannot read wrk's report:\n{text}"))
}

fn lua(scenario: &Scenario) -> String {
    let mut script = format!("wrk.method = \"{}\"\n", scenario.method);
    for (k, v) in &scenario.headers {
        script.push_str(&format!("wrk.headers[\"{k}\"] = \"{v}\"\n"));
    }
    if !scenario.body.is_empty() {
        script.push_str(&format!("wrk.body = [=[{}]=]\n", scenario.body));
    }
    script
}

pub fn parse(text: &str) -> Option<Measurement> {
    let mut m = Measurement {
        requests_per_second: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        requests: 0,
        errors: 0,
    };
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rps] => m.requests_per_second = rps.parse().ok()?,
            ["50%", latency] => m.p50_ms = millis(latency)?,
            ["99%", latency] => m.p99_ms = millis(latency)?,
            [n, "requests", "in", ..] => m.requests = n.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => m.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                m.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    (m.requests_per_second > 0.0).then_some(m)
}

fn millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let text = "Running 5s test @ http://127.0.0.1:1234/items
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   612.00us  100.00us   5.00ms   90.00%
    Req/Sec    52.10k     1.20k   54.00k    70.00%
  Latency Distribution
     50%  598.00us
     75%  650.00us
     90%  700.00us
     99%    1.20ms
  260500 requests in 5.00s, 30.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  52100.00
Transfer/sec:      6.00MB
";
        let m = parse(text).expect("parsed");
        assert_eq!(m.requests_per_second, 52100.0);
        assert!((m.p50_ms - 0.598).abs() < 1e-9);
        assert!((m.p99_ms - 1.2).abs() < 1e-9);
        assert_eq!(m.requests, 260500);
        assert_eq!(m.errors, 3);
    }
}
