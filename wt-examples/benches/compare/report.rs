//! Results: every measured value by round, their medians with min–max, the ratio of each stack's
//! median to raw quinn's, wt-quinn's targets, the ratio of two server workers to one, the
//! printed tables and the JSON file.

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::scenarios::{Better, Metric, Sample, Scenario};
use super::stack::StackId;

/// The stacks whose medians are checked against the targets.
const OURS: [StackId; 2] = [StackId::WtQuinn, StackId::WtQuinnD07];
/// The other WebTransport implementations, for targets that ask to beat them.
const OTHERS: [StackId; 2] = [StackId::Wtransport, StackId::WebTransportQuinn];
/// Stacks also compared with another than raw quinn: (stack, over). wt-quinn with two server
/// workers over one, for the scaling scenario above all.
const PAIRS: [(StackId, StackId); 1] = [(StackId::WtQuinnW2, StackId::WtQuinn)];

struct Record {
    stack: StackId,
    metric: &'static Metric,
    value: f64,
}

/// A run that failed, by round, scenario and stack.
pub struct Failure {
    pub round: usize,
    pub scenario: Scenario,
    pub stack: StackId,
    pub error: String,
}

#[derive(Default)]
pub struct Results {
    records: Vec<Record>,
    pub failures: Vec<Failure>,
}

/// One line of the table: a metric for one stack over all rounds.
pub struct Row {
    pub metric: &'static Metric,
    pub stack: StackId,
    pub values: Vec<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// The median over raw quinn's median.
    pub ratio: Option<f64>,
    pub verdict: Option<Verdict>,
}

pub struct Verdict {
    pub met: bool,
    pub text: String,
}

impl Results {
    pub fn add(&mut self, stack: StackId, samples: &[Sample]) {
        self.records.extend(samples.iter().map(|s| Record {
            stack,
            metric: s.metric,
            value: s.value,
        }));
    }

    /// The rows for these scenarios and stacks, in that order; a stack without values for a
    /// metric (every run failed) has no row.
    pub fn rows(&self, scenarios: &[Scenario], stacks: &[StackId]) -> Vec<Row> {
        let mut rows = Vec::new();
        for scenario in scenarios {
            for &metric in scenario.metrics() {
                let values = |stack: StackId| -> Vec<f64> {
                    self.records
                        .iter()
                        .filter(|r| r.stack == stack && std::ptr::eq(r.metric, metric))
                        .map(|r| r.value)
                        .collect()
                };
                let medians: Vec<(StackId, f64)> = stacks
                    .iter()
                    .filter_map(|&s| median(&values(s)).map(|m| (s, m)))
                    .collect();
                let median_of = |stack| medians.iter().find(|(s, _)| *s == stack).map(|m| m.1);
                let baseline = median_of(StackId::RawQuinn).filter(|b| *b > 0.0);
                for &(stack, median) in &medians {
                    let values = values(stack);
                    let ratio = baseline.map(|b| median / b);
                    let verdict = OURS
                        .contains(&stack)
                        .then(|| verdict(metric, ratio, median, &|s| median_of(s)))
                        .flatten();
                    rows.push(Row {
                        metric,
                        stack,
                        min: values.iter().copied().fold(f64::INFINITY, f64::min),
                        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        values,
                        median,
                        ratio,
                        verdict,
                    });
                }
            }
        }
        rows
    }
}

pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Checks a median against the metric's target.
fn verdict(
    metric: &Metric,
    ratio: Option<f64>,
    median: f64,
    median_of: &dyn Fn(StackId) -> Option<f64>,
) -> Option<Verdict> {
    let target = metric.target?;
    let ratio = ratio?;
    let (sign, ratio_ok) = match metric.better {
        Better::Higher => ("≥", ratio >= target.ratio),
        Better::Lower => ("≤", ratio <= target.ratio),
    };
    let mut text = format!("{sign}{:.2} ", target.ratio);
    if ratio_ok {
        text.push_str("met");
    } else {
        // How far the median is from the bound, relative to the bound.
        let _ = write!(
            text,
            "MISSED by {:.1}%",
            (ratio / target.ratio - 1.0).abs() * 100.0
        );
    }
    let mut met = ratio_ok;
    if target.beat_others {
        let beaten: Vec<String> = OTHERS
            .iter()
            .filter_map(|&s| median_of(s).map(|m| (s, m)))
            .filter(|&(_, m)| match metric.better {
                Better::Higher => median <= m,
                Better::Lower => median >= m,
            })
            .map(|(s, _)| s.name().to_string())
            .collect();
        if beaten.is_empty() {
            text.push_str("; beats the others");
        } else {
            met = false;
            let _ = write!(text, "; NOT better than {}", beaten.join(", "));
        }
    }
    Some(Verdict { met, text })
}

/// Up to four significant digits, never scientific notation.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The table: one line per metric and stack.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "metric",
        "unit",
        "stack",
        "median",
        "/quinn",
        "min – max",
        "n",
        "target",
    ];
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.metric.key.to_string(),
                unit(r.metric),
                r.stack.name().to_string(),
                number(r.median),
                r.ratio.map_or("–".into(), |x| format!("{x:.3}")),
                format!("{} – {}", number(r.min), number(r.max)),
                r.values.len().to_string(),
                r.verdict.as_ref().map_or(String::new(), |v| v.text.clone()),
            ]
        })
        .collect();
    let groups: Vec<&str> = rows.iter().map(|r| r.metric.key).collect();
    grid(&header, &lines, &groups, 3..=6)
}

/// The metric's unit with its arrow (↑ higher is better, ↓ lower).
fn unit(metric: &Metric) -> String {
    let arrow = match metric.better {
        Better::Higher => "↑",
        Better::Lower => "↓",
    };
    format!("{} {arrow}", metric.unit)
}

/// One stack's median over another's, for a metric both have.
pub struct PairRatio {
    pub metric: &'static Metric,
    pub stack: StackId,
    pub over: StackId,
    pub ratio: f64,
    /// The stack's median and the other's.
    pub medians: (f64, f64),
}

/// The ratios of the [`PAIRS`] found in `rows`, metric by metric.
pub fn pair_ratios(rows: &[Row]) -> Vec<PairRatio> {
    let mut out = Vec::new();
    for (stack, over) in PAIRS {
        for row in rows.iter().filter(|r| r.stack == stack) {
            let base = rows
                .iter()
                .find(|r| r.stack == over && std::ptr::eq(r.metric, row.metric));
            if let Some(base) = base.filter(|b| b.median > 0.0) {
                out.push(PairRatio {
                    metric: row.metric,
                    stack,
                    over,
                    ratio: row.median / base.median,
                    medians: (row.median, base.median),
                });
            }
        }
    }
    out
}

/// The pair ratios as a table (empty without any): one line per metric.
pub fn pair_table(pairs: &[PairRatio]) -> String {
    let header = ["metric", "unit", "stack / over", "medians", "ratio"];
    let lines: Vec<Vec<String>> = pairs
        .iter()
        .map(|p| {
            vec![
                p.metric.key.to_string(),
                unit(p.metric),
                format!("{} / {}", p.stack.name(), p.over.name()),
                format!("{} / {}", number(p.medians.0), number(p.medians.1)),
                format!("{:.3}", p.ratio),
            ]
        })
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let groups: Vec<&str> = pairs.iter().map(|p| p.metric.scenario.name()).collect();
    grid(&header, &lines, &groups, 3..=4)
}

/// Aligned columns under `header`, the `numeric` ones right-aligned; a blank line wherever the
/// group of a line changes.
fn grid(
    header: &[&str],
    lines: &[Vec<String>],
    groups: &[&str],
    numeric: std::ops::RangeInclusive<usize>,
) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            if numeric.contains(&i) {
                let _ = write!(line, "{pad}{cell}  ");
            } else {
                let _ = write!(line, "{cell}{pad}  ");
            }
        }
        line.trim_end().to_string() + "\n"
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = line(&header);
    let mut previous: Option<&str> = None;
    for (cells, group) in lines.iter().zip(groups) {
        if previous.is_some_and(|p| p != *group) {
            out.push('\n');
        }
        previous = Some(group);
        out.push_str(&line(cells));
    }
    out
}

/// The results as JSON, with `context` (command, machine load, sizes…) at the top level.
pub fn json(rows: &[Row], pairs: &[PairRatio], failures: &[Failure], context: Value) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "scenario": r.metric.scenario.name(),
                "metric": r.metric.key,
                "unit": r.metric.unit,
                "better": match r.metric.better { Better::Higher => "higher", Better::Lower => "lower" },
                "stack": r.stack.name(),
                "values": r.values,
                "median": r.median,
                "min": r.min,
                "max": r.max,
                "ratio_to_quinn": r.ratio,
                "target": r.metric.target.map(|t| json!({
                    "ratio": t.ratio,
                    "beat_others": t.beat_others,
                })),
                "target_met": r.verdict.as_ref().map(|v| v.met),
                "verdict": r.verdict.as_ref().map(|v| v.text.clone()),
            })
        })
        .collect();
    let failures: Vec<Value> = failures
        .iter()
        .map(|f| {
            json!({
                "round": f.round,
                "scenario": f.scenario.name(),
                "stack": f.stack.name(),
                "error": f.error,
            })
        })
        .collect();
    let pairs: Vec<Value> = pairs
        .iter()
        .map(|p| {
            json!({
                "metric": p.metric.key,
                "stack": p.stack.name(),
                "over": p.over.name(),
                "medians": [p.medians.0, p.medians.1],
                "ratio": p.ratio,
            })
        })
        .collect();
    let mut out = context;
    out["results"] = Value::Array(rows);
    out["pair_ratios"] = Value::Array(pairs);
    out["failures"] = Value::Array(failures);
    out
}
