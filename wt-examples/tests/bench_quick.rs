//! The benchmark suite (`benches/compare`, run by `cargo xtask bench`) works: every scenario on
//! every stack, with tiny sizes and in-process, produces sane numbers. CI does not benchmark;
//! this keeps the benchmark from rotting. The same code is compiled here as in the bench target.

#[path = "../benches/compare/mod.rs"]
#[allow(dead_code)] // the command line, child process and table are the bench program's
mod suite;

use std::time::Instant;

use suite::scenarios::{Better, Scenario, Sizes};
use suite::stack::StackId;

#[test]
fn every_scenario_runs_on_every_stack() {
    let env = suite::Env::new().expect("benchmark environment");
    let sizes = Sizes::tiny();
    let mut failures = Vec::new();
    for scenario in Scenario::ALL {
        for stack in StackId::ALL {
            let start = Instant::now();
            let samples = match suite::run_once(stack, scenario, &env, &sizes) {
                Ok(samples) => samples,
                Err(e) => {
                    failures.push(format!("{} / {}: {e:#}", scenario.name(), stack.name()));
                    continue;
                }
            };
            eprintln!(
                "{:<12} {:<20} {:>6.2}s  {:?}",
                scenario.name(),
                stack.name(),
                start.elapsed().as_secs_f64(),
                samples
                    .iter()
                    .map(|s| format!("{} {:.1}", s.metric.key, s.value))
                    .collect::<Vec<_>>()
            );
            for &metric in scenario.metrics() {
                let Some(sample) = samples.iter().find(|s| std::ptr::eq(s.metric, metric)) else {
                    failures.push(format!(
                        "{} / {}: no {}",
                        scenario.name(),
                        stack.name(),
                        metric.key
                    ));
                    continue;
                };
                let v = sample.value;
                // Rates and latencies are positive; CPU time, loss and memory may round to 0
                // at these sizes (memory can even shrink when the allocator returns pages).
                let sane = v.is_finite()
                    && match (metric.better, scenario) {
                        (_, Scenario::Memory) => v < 1e6,
                        (Better::Higher, _) => v > 0.0,
                        (Better::Lower, _) => v >= 0.0,
                    };
                if !sane {
                    failures.push(format!(
                        "{} / {}: {} = {v}",
                        scenario.name(),
                        stack.name(),
                        metric.key
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Medians, ratios to raw quinn and target verdicts, on made-up numbers.
#[test]
fn medians_ratios_and_targets() {
    use suite::report::{median, table, Results};
    use suite::scenarios::{Metric, Sample, BULK_RATE, RTT_P50, SETUP_RATE};

    assert_eq!(median(&[]), None);
    assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));

    let mut results = Results::default();
    for (stack, rate, rtt, setup) in [
        (StackId::RawQuinn, 100.0, 50.0, 1000.0),
        (StackId::WtQuinn, 96.0, 52.0, 950.0),
        (StackId::Wtransport, 90.0, 60.0, 960.0),
    ] {
        results.add(
            stack,
            &[
                Sample::new(&BULK_RATE, rate),
                Sample::new(&RTT_P50, rtt),
                Sample::new(&SETUP_RATE, setup),
            ],
        );
    }
    let stacks = [StackId::RawQuinn, StackId::WtQuinn, StackId::Wtransport];
    let rows = results.rows(
        &[Scenario::Bulk, Scenario::RoundTrips, Scenario::Setup],
        &stacks,
    );
    let find = |metric: &Metric, stack| {
        rows.iter()
            .find(|r| std::ptr::eq(r.metric, metric) && r.stack == stack)
            .unwrap()
    };
    let bulk = find(&BULK_RATE, StackId::WtQuinn);
    assert_eq!(bulk.ratio, Some(0.96));
    assert!(!bulk.verdict.as_ref().unwrap().met, "0.96 < 0.97");
    assert!(
        find(&RTT_P50, StackId::WtQuinn)
            .verdict
            .as_ref()
            .unwrap()
            .met
    );
    let setup = find(&SETUP_RATE, StackId::WtQuinn)
        .verdict
        .as_ref()
        .unwrap();
    assert!(!setup.met, "slower than wtransport: {}", setup.text);
    assert!(find(&BULK_RATE, StackId::Wtransport).verdict.is_none());
    assert!(table(&rows).contains("MISSED"));
}

/// Two server workers over one: the ratio of their medians, metric by metric.
#[test]
fn worker_ratios() {
    use suite::report::{pair_ratios, pair_table, Results};
    use suite::scenarios::{Sample, SCALING_SETUP_CPU, SCALING_SETUP_RATE};

    let mut results = Results::default();
    for (stack, rate, cpu) in [
        (StackId::RawQuinn, 2000.0, 0.3),
        (StackId::WtQuinn, 1600.0, 0.5),
        (StackId::WtQuinnW2, 2000.0, 0.55),
    ] {
        results.add(
            stack,
            &[
                Sample::new(&SCALING_SETUP_RATE, rate),
                Sample::new(&SCALING_SETUP_CPU, cpu),
            ],
        );
    }
    let rows = results.rows(&[Scenario::Scaling], &StackId::ALL);
    let pairs = pair_ratios(&rows);
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[0].ratio, 1.25);
    assert!((pairs[1].ratio - 1.1).abs() < 1e-9);
    assert!(pair_table(&pairs).contains("wt-quinn-w2 / wt-quinn"));
    assert!(pair_table(&[]).is_empty());
}

/// The scaling scenario's plan survives its way to the client process, and the client's output
/// is read back: CPU time between the marks, the result, or the client's error.
#[test]
fn scaling_plan_and_client_output() {
    use std::time::Duration;
    use suite::client_place::watch;
    use suite::scaling_client::Plan;

    let env = suite::Env::new().expect("benchmark environment");
    let plan = Plan {
        stack: StackId::WtQuinnW2,
        addr: "127.0.0.1:4433".parse().unwrap(),
        setups: 7,
        echo_bytes: 1 << 20,
        limit: Duration::from_secs(5),
        identity: env.identity.clone(),
    };
    let back = Plan::from_json(&plan.to_json()).expect("the plan");
    assert_eq!(back.stack, plan.stack);
    assert_eq!(back.addr, plan.addr);
    assert_eq!((back.setups, back.echo_bytes), (7, 1 << 20));
    assert_eq!(back.limit, plan.limit);
    assert_eq!(back.identity.cert_hash(), env.identity.cert_hash());
    assert_eq!(
        back.identity.key().secret_der(),
        env.identity.key().secret_der()
    );

    let output = "start setup\nend setup\nstart echo\nend echo\n\
                  result {\"sessions\": 7, \"failed\": 1, \"setup_seconds\": 0.5, \
                  \"setup_cpu\": 0.25, \"echo_bytes\": 1000, \"echo_seconds\": 0.1, \
                  \"echo_cpu\": 0.05}\n";
    let watched = watch(output.as_bytes()).expect("the output");
    assert!(watched.cpu("setup").unwrap() >= 0.0);
    assert!(watched.cpu("echo").unwrap() >= 0.0);
    assert!(watched.cpu("churn").is_err());
    let m = &watched.measured;
    assert_eq!((m.sessions, m.failed, m.echo_bytes), (7, 1, 1000));
    assert_eq!((m.setup.wall, m.setup.cpu, m.echo.wall), (0.5, 0.25, 0.1));
    let failed = watch("start setup\nerror no route\n".as_bytes())
        .err()
        .unwrap();
    assert!(format!("{failed}").contains("no route"), "{failed}");
    assert!(watch("start setup\n".as_bytes()).is_err(), "no result");
    assert!(
        watch("end echo\n".as_bytes()).is_err(),
        "an end without a start"
    );
}

#[test]
fn percentiles() {
    use std::time::Duration;
    use suite::measure::percentile_us;

    let mut v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
    assert_eq!(percentile_us(&mut v, 50.0), 50.0);
    assert_eq!(percentile_us(&mut v, 99.0), 99.0);
    assert_eq!(percentile_us(&mut v[..1], 99.0), 1.0);
}
