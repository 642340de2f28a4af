//! The printed table. Every row names its scenario, the figures for each
//! target, what the gate adds (or its share of the direct rate), the target
//! figure and whether it was met.

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Row {
    pub scenario: String,
    pub direct: String,
    /// nginx as a plain reverse proxy, when the run has that lane.
    pub nginx: String,
    pub gate: String,
    /// An earlier gate binary, when the run has that lane.
    pub before: String,
    pub added: String,
    pub target: String,
    pub verdict: String,
    pub peer: String,
}

#[derive(Default)]
pub struct Table {
    pub rows: Vec<Row>,
}

/// Whether a figure met its target; `None` when there is no target.
pub fn verdict(met: Option<bool>) -> String {
    match met {
        Some(true) => "met".into(),
        Some(false) => "MISSED".into(),
        None => String::new(),
    }
}

pub fn us(ns: f64) -> String {
    if ns.is_nan() {
        return "-".into();
    }
    if ns.abs() >= 10_000_000.0 {
        format!("{:.0} ms", ns / 1e6)
    } else if ns.abs() >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.0} µs", ns / 1e3)
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl Table {
    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn print(&self, nginx: bool, before: bool, peer: Option<&str>) {
        let mut header = vec!["scenario", "direct"];
        if nginx {
            header.push("nginx");
        }
        header.push("gate");
        if before {
            header.push("before");
        }
        header.extend(["gate adds", "target", ""]);
        if let Some(p) = peer {
            header.push(p);
        }
        let cells: Vec<Vec<&str>> = self
            .rows
            .iter()
            .map(|r| {
                let mut v = vec![r.scenario.as_str(), r.direct.as_str()];
                if nginx {
                    v.push(r.nginx.as_str());
                }
                v.push(r.gate.as_str());
                if before {
                    v.push(r.before.as_str());
                }
                v.extend([r.added.as_str(), r.target.as_str(), r.verdict.as_str()]);
                if peer.is_some() {
                    v.push(r.peer.as_str());
                }
                v
            })
            .collect();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|c| c[i].chars().count())
                    .chain([header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |v: &[&str]| {
            let parts: Vec<String> = v
                .iter()
                .zip(&widths)
                .map(|(s, w)| format!("{s}{}", " ".repeat(w - s.chars().count())))
                .collect();
            println!("| {} |", parts.join(" | "));
        };
        line(&header);
        println!("|{}|", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
        for c in &cells {
            line(c);
        }
    }
}
