//! Decision latency with 100,000 devices' entities loaded in the bundle:
//! `cargo bench -p smtrust-policy --bench decide`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{Criterion, criterion_group, criterion_main};
use smtrust_policy::{Engine, TopicFilter, TopicName};
use std::hint::black_box;

#[path = "support/fleet.rs"]
#[allow(unreachable_pub, dead_code)]
mod fleet;

fn decide(c: &mut Criterion) {
    let engine = Engine::new(fleet::bundle(fleet::DEVICES));
    let i = 4242;
    let id = fleet::device_id(i);
    let device = fleet::principal(i);
    let parse = |s: String| TopicName::parse(&s).unwrap_or_else(|e| unreachable!("{e}"));
    let filter = |s: String| TopicFilter::parse(&s).unwrap_or_else(|e| unreachable!("{e}"));
    let own_up = parse(format!("devices/{id}/up/telemetry"));
    let other_up = parse(format!("devices/{}/up/telemetry", fleet::device_id(7)));
    let own_down = filter(format!("devices/{id}/down/cmd"));
    let wide = filter("devices/+/down/#".to_owned());
    let tariffs = filter("tariffs/meter/+".to_owned());
    // Warm the principal's cached entities, as a live connection would.
    assert!(engine.decide_connect(&device, "mqtts").allowed);

    let mut g = c.benchmark_group("decide");
    g.bench_function("connect", |b| {
        b.iter(|| engine.decide_connect(black_box(&device), "mqtts"))
    });
    g.bench_function("publish_allow", |b| {
        b.iter(|| engine.decide_publish(black_box(&device), &own_up))
    });
    g.bench_function("publish_deny", |b| {
        b.iter(|| engine.decide_publish(black_box(&device), &other_up))
    });
    g.bench_function("subscribe_allow", |b| {
        b.iter(|| engine.decide_subscribe(black_box(&device), &own_down))
    });
    g.bench_function("subscribe_deny_wide", |b| {
        b.iter(|| engine.decide_subscribe(black_box(&device), &wide))
    });
    g.bench_function("subscribe_group", |b| {
        b.iter(|| engine.decide_subscribe(black_box(&device), &tariffs))
    });
    g.bench_function("principal_first_decision", |b| {
        b.iter(|| engine.decide_connect(&fleet::principal(black_box(i)), "mqtts"))
    });
    g.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
