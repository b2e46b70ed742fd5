//! Decision latency percentiles and entity memory with 100,000 devices loaded:
//! `cargo run --release -p smtrust-policy --example latency`.

use smtrust_policy::{Engine, Principal, TopicFilter, TopicName};
use std::time::Instant;

#[path = "../benches/support/fleet.rs"]
#[allow(unreachable_pub, dead_code)]
mod fleet;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn percentiles(name: &str, mut ns: Vec<u64>) {
    ns.sort_unstable();
    let at = |permille: usize| {
        ns.get(ns.len().saturating_sub(1) * permille / 1000)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{name:<22} n={:<7} p50={:>6.2} µs  p99={:>6.2} µs  max={:>7.2} µs",
        ns.len(),
        at(500) as f64 / 1000.0,
        at(990) as f64 / 1000.0,
        at(1000) as f64 / 1000.0
    );
}

fn measure(name: &str, rounds: usize, mut f: impl FnMut(usize) -> bool) {
    let mut ns = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let t = Instant::now();
        let allowed = f(r);
        ns.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
        std::hint::black_box(allowed);
    }
    percentiles(name, ns);
}

fn main() {
    let n = fleet::DEVICES;
    let json = fleet::entities(n);
    let before = rss_kib();
    let t = Instant::now();
    let bundle = fleet::bundle(n);
    let compile = t.elapsed();
    let after = rss_kib();
    drop(json);
    println!(
        "bundle: {n} devices + 112 groups, {} entities; compile+validate {:.2} s; RSS +{} MiB ({:.0} bytes/device)",
        bundle.entities().len(),
        compile.as_secs_f64(),
        after.saturating_sub(before) / 1024,
        after.saturating_sub(before) as f64 * 1024.0 / n as f64
    );
    let engine = Engine::new(bundle);
    // 1,000 connections, each keeping its Principal (entities built on first decision).
    let conns: Vec<(Principal, TopicName, TopicFilter)> = (0..1000)
        .map(|k| {
            let i = k * 97 % n;
            let id = fleet::device_id(i);
            let up = TopicName::parse(&format!("devices/{id}/up/telemetry"));
            let down = TopicFilter::parse(&format!("devices/{id}/down/cmd"));
            match (up, down) {
                (Ok(u), Ok(d)) => (fleet::principal(i), u, d),
                _ => unreachable!("synthetic topics are valid"),
            }
        })
        .collect();
    let rounds = 200_000;
    let pick = |r: usize| &conns[r % conns.len()];
    measure("first decision (build)", conns.len(), |r| {
        engine.decide_connect(&pick(r).0, "mqtts").allowed
    });
    measure("connect", rounds, |r| {
        engine.decide_connect(&pick(r).0, "mqtts").allowed
    });
    measure("publish (allow)", rounds, |r| {
        engine.decide_publish(&pick(r).0, &pick(r).1).allowed
    });
    let other = pick(1).1.clone();
    measure("publish (deny)", rounds, |r| {
        engine.decide_publish(&pick(r * 2).0, &other).allowed
    });
    measure("subscribe (allow)", rounds, |r| {
        engine.decide_subscribe(&pick(r).0, &pick(r).2).allowed
    });
    let wide = TopicFilter::parse("devices/+/down/#").unwrap_or_else(|e| unreachable!("{e}"));
    measure("subscribe (deny, wide)", rounds, |r| {
        engine.decide_subscribe(&pick(r).0, &wide).allowed
    });
}
