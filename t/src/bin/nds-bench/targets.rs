//! The targets, as data: each row names the figures (keys the measurements record, or
//! ratios derived from them) that must all meet one threshold. What limits a figure
//! that is not met is explained in bench/TARGETS.md under the row's name, and the
//! summary quotes it from there.

use std::collections::BTreeMap;

use crate::report::Report;

/// How every figure of a row compares with its threshold.
#[derive(Clone, Copy)]
enum Rule {
    AtLeast(f64),
    AtMost(f64),
    Below(f64),
}

impl Rule {
    fn met(self, v: f64) -> bool {
        match self {
            Rule::AtLeast(t) => v >= t,
            Rule::AtMost(t) => v <= t,
            Rule::Below(t) => v < t,
        }
    }

    fn show(self, unit: &str) -> String {
        match self {
            Rule::AtLeast(t) => format!(">= {t}{unit}"),
            Rule::AtMost(t) => format!("<= {t}{unit}"),
            Rule::Below(t) => format!("< {t}{unit}"),
        }
    }
}

struct Goal {
    /// The row's name, and its section in bench/TARGETS.md.
    name: &'static str,
    figures: &'static [&'static str],
    rule: Rule,
    /// After each value and the threshold: "x", " us", " KiB" or nothing.
    unit: &'static str,
}

use Rule::*;

/// Figures derived from the measured ones: `key = numerator / denominator`.
const RATIOS: &[(&str, &str, &str)] = &[
    (
        "tls.client.cpu.vs_haproxy.out",
        "tls.client.cpu.out",
        "haproxy.tls.client.cpu.out",
    ),
    (
        "tls.client.cpu.vs_haproxy.in",
        "tls.client.cpu.in",
        "haproxy.tls.client.cpu.in",
    ),
    (
        "tls.both.cpu.vs_haproxy.out",
        "tls.both.cpu.out",
        "haproxy.tls.both.cpu.out",
    ),
    (
        "tls.both.cpu.vs_haproxy.in",
        "tls.both.cpu.in",
        "haproxy.tls.both.cpu.in",
    ),
    (
        "cpu.unix.vs_floor.down",
        "cpu.unix.module.down",
        "cpu.unix.floor.down",
    ),
    (
        "cpu.unix.vs_floor.up",
        "cpu.unix.module.up",
        "cpu.unix.floor.up",
    ),
    (
        "cpu.tcp.vs_floor.down",
        "cpu.tcp.module.down",
        "cpu.tcp.floor.down",
    ),
    (
        "cpu.tcp.vs_floor.up",
        "cpu.tcp.module.up",
        "cpu.tcp.floor.up",
    ),
    (
        "cpu.unix.vs_stock.down",
        "cpu.unix.module.down",
        "cpu.unix.stock.down",
    ),
    (
        "cpu.unix.vs_stock.up",
        "cpu.unix.module.up",
        "cpu.unix.stock.up",
    ),
    (
        "cpu.unix.vs_haproxy.down",
        "cpu.unix.module.down",
        "cpu.unix.haproxy.down",
    ),
    (
        "cpu.unix.vs_haproxy.up",
        "cpu.unix.module.up",
        "cpu.unix.haproxy.up",
    ),
    (
        "cpu.unix.vs_socat.down",
        "cpu.unix.module.down",
        "cpu.unix.socat.down",
    ),
    (
        "cpu.unix.vs_socat.up",
        "cpu.unix.module.up",
        "cpu.unix.socat.up",
    ),
    (
        "cpu.tcp.vs_stock.down",
        "cpu.tcp.module.down",
        "cpu.tcp.stock.down",
    ),
    (
        "cpu.tcp.vs_stock.up",
        "cpu.tcp.module.up",
        "cpu.tcp.stock.up",
    ),
    (
        "cpu.tcp.vs_haproxy.down",
        "cpu.tcp.module.down",
        "cpu.tcp.haproxy.down",
    ),
    (
        "cpu.tcp.vs_haproxy.up",
        "cpu.tcp.module.up",
        "cpu.tcp.haproxy.up",
    ),
    (
        "cpu.tcp.vs_socat.down",
        "cpu.tcp.module.down",
        "cpu.tcp.socat.down",
    ),
    (
        "cpu.tcp.vs_socat.up",
        "cpu.tcp.module.up",
        "cpu.tcp.socat.up",
    ),
    (
        "setup.unix.vs_stock",
        "setup.unix.module",
        "setup.unix.stock",
    ),
];

#[rustfmt::skip]
const GOALS: &[Goal] = &[
    Goal { name: "throughput vs direct, nginx on a unix socket (down / up)",
           figures: &["tput.unix.unix.down", "tput.unix.unix.up"], rule: AtLeast(0.8), unit: "" },
    Goal { name: "throughput vs direct unix socket, nginx on TCP (down / up)",
           figures: &["tput.unix.tcp.down", "tput.unix.tcp.up"], rule: AtLeast(0.8), unit: "" },
    Goal { name: "throughput vs direct TCP, daemon on TCP (down / up)",
           figures: &["tput.tcp.down", "tput.tcp.up"], rule: AtLeast(0.8), unit: "" },
    Goal { name: "vs stock nginx, daemon on unix / on TCP (down / up)",
           figures: &["stock.unix.down", "stock.unix.up", "stock.tcp.down", "stock.tcp.up"],
           rule: AtLeast(1.5), unit: "x" },
    Goal { name: "vs HAProxy, daemon on unix / on TCP (down / up)",
           figures: &["haproxy.unix.down", "haproxy.unix.up", "haproxy.tcp.down", "haproxy.tcp.up"],
           rule: AtLeast(1.0), unit: "x" },
    Goal { name: "real docker exec vs direct, nginx on a unix socket (out / in)",
           figures: &["docker.unix.out", "docker.unix.in"], rule: AtLeast(0.95), unit: "" },
    Goal { name: "real docker exec vs direct socket, nginx on TCP (out / in)",
           figures: &["docker.tcp.out", "docker.tcp.in"], rule: AtLeast(0.95), unit: "" },
    Goal { name: "real docker exec over TLS vs the direct TLS daemon, TLS client leg (out / in)",
           figures: &["tls.client.out", "tls.client.in"], rule: AtLeast(0.9), unit: "" },
    Goal { name: "real docker exec over TLS vs the direct TLS daemon, TLS on both legs (out / in)",
           figures: &["tls.both.out", "tls.both.in"], rule: AtLeast(0.9), unit: "" },
    Goal { name: "proxy CPU per GiB over TLS vs HAProxy, TLS client leg (out / in)",
           figures: &["tls.client.cpu.vs_haproxy.out", "tls.client.cpu.vs_haproxy.in"],
           rule: Below(1.0), unit: "x" },
    Goal { name: "proxy CPU per GiB over TLS vs HAProxy, TLS on both legs (out / in)",
           figures: &["tls.both.cpu.vs_haproxy.out", "tls.both.cpu.vs_haproxy.in"],
           rule: Below(1.0), unit: "x" },
    Goal { name: "proxy CPU per GiB vs the splice relay floor, daemon on a unix socket (down / up)",
           figures: &["cpu.unix.vs_floor.down", "cpu.unix.vs_floor.up"], rule: AtMost(1.3), unit: "x" },
    Goal { name: "proxy CPU per GiB vs stock nginx, HAProxy, socat, daemon on a unix socket (down / up each)",
           figures: &["cpu.unix.vs_stock.down", "cpu.unix.vs_stock.up", "cpu.unix.vs_haproxy.down",
                      "cpu.unix.vs_haproxy.up", "cpu.unix.vs_socat.down", "cpu.unix.vs_socat.up"],
           rule: Below(1.0), unit: "x" },
    Goal { name: "proxy CPU per GiB vs the splice relay floor, daemon on TCP (down / up)",
           figures: &["cpu.tcp.vs_floor.down", "cpu.tcp.vs_floor.up"], rule: AtMost(1.3), unit: "x" },
    Goal { name: "proxy CPU per GiB vs stock nginx, HAProxy, socat, daemon on TCP (down / up each)",
           figures: &["cpu.tcp.vs_stock.down", "cpu.tcp.vs_stock.up", "cpu.tcp.vs_haproxy.down",
                      "cpu.tcp.vs_haproxy.up", "cpu.tcp.vs_socat.down", "cpu.tcp.vs_socat.up"],
           rule: Below(1.0), unit: "x" },
    Goal { name: "hijack set-up vs stock nginx, daemon on a unix socket",
           figures: &["setup.unix.vs_stock"], rule: AtLeast(0.9), unit: "x" },
    Goal { name: "added p99 of 1-byte round trips",
           figures: &["latency"], rule: AtMost(50.0), unit: " us" },
    Goal { name: "added p99, every process on one CPU",
           figures: &["latency.pinned"], rule: AtMost(50.0), unit: " us" },
    Goal { name: "idle tunnel memory per tunnel",
           figures: &["idle.kib"], rule: AtMost(16.0), unit: " KiB" },
    Goal { name: "idle tunnels held, every one echoing after",
           figures: &["idle.echoing"], rule: AtLeast(10000.0), unit: "" },
    Goal { name: "ordinary requests vs nginx without the module",
           figures: &["ordinary"], rule: AtLeast(0.99), unit: "" },
];

/// The paragraphs of bench/TARGETS.md under each `## name`.
fn explanations() -> BTreeMap<String, String> {
    let path = nds_tests::root().join("bench/TARGETS.md");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("## ") {
            out.extend(current.take());
            current = Some((name.trim().to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            if !line.trim().is_empty() {
                if !body.is_empty() {
                    body.push(' ');
                }
                body.push_str(line.trim());
            }
        }
    }
    out.extend(current);
    out
}

/// The targets against this run's figures, and for each one not met what limits it.
pub fn targets_summary(report: &mut Report) {
    let mut f = report.figures.clone();
    for (key, num, den) in RATIOS {
        if let (Some(n), Some(d)) = (f.get(num), f.get(den)) {
            let ratio = n / d;
            f.insert(key, ratio);
        }
    }
    let why = explanations();
    let mut rows = Vec::new();
    for goal in GOALS {
        let values: Option<Vec<f64>> = goal.figures.iter().map(|k| f.get(k).copied()).collect();
        let Some(values) = values else { continue };
        let met = values.iter().all(|v| goal.rule.met(*v));
        let shown: Vec<String> = values
            .iter()
            .map(|v| format!("{v:.2}{}", goal.unit))
            .collect();
        rows.push((goal.name, goal.rule.show(goal.unit), shown.join(" / "), met));
    }
    if rows.is_empty() {
        return;
    }
    report.line("Targets against this run (bench/TARGETS.md explains each)".into());
    report.table_head(&["figure", "target", "measured", "met"]);
    let mut limits = String::new();
    for (name, target, measured, met) in &rows {
        report.row(&[
            name.to_string(),
            target.clone(),
            measured.clone(),
            if *met { "yes" } else { "no" }.to_string(),
        ]);
        if !met {
            let text = why
                .get(*name)
                .map_or("(not explained in bench/TARGETS.md)", String::as_str);
            limits += &format!("- {name}: {text}\n");
        }
    }
    if !limits.is_empty() {
        report.text += &format!("\nWhat limits the figures not met:\n\n{limits}");
    }
}
