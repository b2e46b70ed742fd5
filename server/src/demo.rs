//! `smtrust demo`: the product's main job on embedded defaults, phase by phase, with counts and timings.
//!
//! A temporary data directory gets a keystore and a CA; a factory batch gives every device a bootstrap
//! identity; the devices enroll over EST on TLS 1.3-SM and attest (one with tampered firmware); they connect
//! through the gateway with MQTT over TLS 1.3-SM to an embedded broker, publish telemetry and receive commands;
//! policy refusals are shown; one device is revoked while connected and the cut is timed.

mod devices;
mod https;
mod mqtt;
mod report;
mod steps;
mod world;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use rumqttc::{QoS, SubscribeReasonCode};
use smtrust_attest::Status;

use mqtt::Seen;
pub(crate) use report::Report;

/// Options of `smtrust demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// How many devices the demo provisions.
    #[arg(long, default_value_t = 1000)]
    pub(crate) devices: usize,
    /// Leave the service and the gateway running afterwards (Ctrl-C stops them).
    #[arg(long)]
    pub(crate) keep_running: bool,
}

pub(crate) fn run(args: &DemoArgs, json: bool) -> anyhow::Result<ExitCode> {
    if args.devices < 4 {
        anyhow::bail!("--devices must be at least 4 (the demo shows refusals and a revocation)");
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run_async(args, json))
}

const LIMIT: Duration = Duration::from_secs(30);
/// Devices connecting to the gateway at once (a fleet comes online in waves).
const WAVE: usize = 64;

async fn run_async(args: &DemoArgs, json: bool) -> anyhow::Result<ExitCode> {
    let n = args.devices;
    let mut report = Report::new(json);

    // 1. CA and service.
    let t = report.begin("ca + service: init");
    let w = world::build(n).await?;
    let node = &w.node;
    report.done(
        "ca + service: init",
        t,
        1,
        true,
        format!(
            "keystore, root + issuing CA `{}`, API https://{}, gateway up",
            world::LABEL,
            node.api_addr
        ),
    );

    // 2. Factory: bootstrap identities.
    let t = report.begin("factory: bootstrap identities");
    let devices = devices::factory(node, &w.dir.path().join("devices"), n).await?;
    let secs = t.elapsed().as_secs_f64();
    report.done(
        "factory: bootstrap identities",
        t,
        devices.len(),
        devices.len() == n,
        "device keys + CSRs on all cores, certificates issued in batches".into(),
    );
    report.figure(
        "factory issuance per second (keys + CSRs + certificates)",
        n as f64 / secs,
    );

    // 3. EST enrollment over TLS 1.3-SM.
    let t = report.begin("est: enroll over TLS 1.3-SM");
    let enrolled = devices::enroll(node, &devices).await?;
    let secs = t.elapsed().as_secs_f64();
    report.done(
        "est: enroll over TLS 1.3-SM",
        t,
        enrolled,
        enrolled == n,
        "bootstrap certificate → operational identity under a new key".into(),
    );
    report.figure(
        "EST enrollments per second (mutual TLS 1.3-SM + issuance)",
        n as f64 / secs,
    );

    // 4. Attestation, one device tampered.
    let tampered = n - 1;
    devices::register_references(node).await?;
    let t = report.begin("attest: appraise evidence");
    let statuses = devices::attest(node, &devices, tampered).await?;
    let affirming = statuses.iter().filter(|s| **s == Status::Affirming).count();
    let tampered_caught = statuses.get(tampered) == Some(&Status::Contraindicated);
    report.done(
        "attest: appraise evidence",
        t,
        affirming,
        affirming == n - 1 && tampered_caught,
        format!(
            "{affirming} affirming; tampered {} contraindicated: {tampered_caught}",
            devices[tampered].id
        ),
    );

    // 5. MQTT through the gateway.
    let gw_mqtt = node
        .gateway_addr("mqtt")
        .ok_or_else(|| anyhow::anyhow!("no mqtt listener"))?;
    let mut platform = mqtt::platform(w.broker).await?;
    let t = report.begin("gateway: connect (MQTT, TLS-SM)");
    // Devices come online in waves, as a fleet does: at most WAVE handshakes in flight.
    let mut conns = Vec::with_capacity(n);
    let mut connected = 0;
    for wave in devices[..tampered].chunks(WAVE) {
        let mut batch = Vec::with_capacity(wave.len());
        for d in wave {
            batch.push(mqtt::connect(node, gw_mqtt, d)?);
        }
        for mut c in batch {
            if matches!(
                mqtt::wait(&mut c, LIMIT, |s| matches!(s, Seen::Connected)).await,
                Some(Seen::Connected)
            ) {
                connected += 1;
            }
            conns.push(c);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    report.done(
        "gateway: connect (MQTT, TLS-SM)",
        t,
        connected,
        connected == n - 1,
        "mutual TLS 1.3-SM, revocation + attestation + policy at admission".into(),
    );
    report.figure(
        "gateway admissions per second (full SM2 mutual handshakes)",
        connected as f64 / secs,
    );

    let t = report.begin("mqtt: telemetry up");
    // A device whose connection failed shows in what the platform does not receive.
    for (c, d) in conns.iter().zip(&devices) {
        let _ = c
            .client
            .subscribe(format!("devices/{}/down/#", d.id), QoS::AtLeastOnce)
            .await;
        let _ = c
            .client
            .publish(
                format!("devices/{}/up/telemetry", d.id),
                QoS::AtLeastOnce,
                false,
                b"{\"t\":21.5}".to_vec(),
            )
            .await;
    }
    let seen = mqtt::collect(&mut platform, n - 1, LIMIT).await;
    report.done(
        "mqtt: telemetry up",
        t,
        seen.len(),
        seen.len() == n - 1,
        "each device publishes on devices/{id}/up/telemetry; the platform receives".into(),
    );

    let t = report.begin("mqtt: commands down");
    for d in devices.iter().take(tampered) {
        platform
            .client
            .publish(
                format!("devices/{}/down/cmd", d.id),
                QoS::AtLeastOnce,
                false,
                b"{\"interval\":5}".to_vec(),
            )
            .await?;
    }
    let mut commanded = 0;
    for c in conns.iter_mut() {
        if matches!(
            mqtt::wait(c, LIMIT, |s| matches!(s, Seen::Command)).await,
            Some(Seen::Command)
        ) {
            commanded += 1;
        }
    }
    report.done(
        "mqtt: commands down",
        t,
        commanded,
        commanded == n - 1,
        "the platform's command reaches each device through the gateway".into(),
    );

    // 6. Refusals: another device's topic, the tampered device, an unpermitted HTTP route.
    let t = report.begin("policy: refusals");
    let (other, victim) = (&devices[1].id, 0);
    let c0 = conns
        .get_mut(victim)
        .ok_or_else(|| anyhow::anyhow!("no device 0"))?;
    c0.client
        .subscribe(format!("devices/{other}/up/#"), QoS::AtLeastOnce)
        .await?;
    let sub_refused = matches!(
        mqtt::wait(c0, LIMIT, |s| matches!(s, Seen::SubAck(_))).await,
        Some(Seen::SubAck(codes)) if codes.iter().all(|c| *c == SubscribeReasonCode::Failure)
    );
    let mut bad = mqtt::connect(node, gw_mqtt, &devices[tampered])?;
    let tampered_refused = !matches!(
        mqtt::wait(&mut bad, LIMIT, |s| matches!(s, Seen::Connected)).await,
        Some(Seen::Connected)
    );
    let gw_http = node
        .gateway_addr("http")
        .ok_or_else(|| anyhow::anyhow!("no http listener"))?;
    let (ok_code, body) = mqtt::http_get(node, gw_http, &devices[2], "/api/v1/status").await?;
    let passport_ok = ok_code == 200 && body.contains(&devices[2].id);
    let (denied_code, _) = mqtt::http_get(node, gw_http, &devices[2], "/api/v1/admin").await?;
    let refusals = [sub_refused, tampered_refused, denied_code == 403];
    let count = refusals.iter().filter(|r| **r).count();
    report.done(
        "policy: refusals",
        t,
        count,
        count == 3 && passport_ok,
        format!(
            "other's topic SUBACK 0x80: {sub_refused}; tampered refused: {tampered_refused}; \
         route denied 403: {}; passport verified by the app: {passport_ok}",
            denied_code == 403
        ),
    );

    // 7. Revocation while connected.
    let t = report.begin("revoke: cut live session");
    let target = 3;
    let cert = devices[target]
        .agent()?
        .certificate()?
        .ok_or_else(|| anyhow::anyhow!("no certificate"))?;
    let serial = devices::serial_of(&cert)?;
    let c = conns
        .get_mut(target)
        .ok_or_else(|| anyhow::anyhow!("no device 3"))?;
    let revoked_at = Instant::now();
    node.ca()
        .revoke(
            world::LABEL,
            &serial,
            smtrust_ca::RevocationReason::KeyCompromise,
        )
        .await?;
    let cut = match mqtt::wait(c, Duration::from_secs(5), |s| matches!(s, Seen::Closed(_))).await {
        Some(Seen::Closed(at)) => Some(at.duration_since(revoked_at)),
        _ => None,
    };
    // Another device still works.
    let c4 = conns
        .get_mut(4 % (n - 1))
        .ok_or_else(|| anyhow::anyhow!("no device 4"))?;
    c4.client
        .publish(
            format!("devices/{}/up/telemetry", devices[4 % (n - 1)].id),
            QoS::AtLeastOnce,
            false,
            b"{}".to_vec(),
        )
        .await?;
    let others_ok = !mqtt::collect(&mut platform, 1, LIMIT).await.is_empty();
    let cut_ok = cut.is_some_and(|d| d < Duration::from_secs(1));
    report.done(
        "revoke: cut live session",
        t,
        1,
        cut_ok && others_ok,
        format!(
            "{} revoked (keyCompromise); others stay connected: {others_ok}",
            devices[target].id
        ),
    );
    report.revocation_cut_ms = cut.map(|d| d.as_secs_f64() * 1000.0);

    if args.keep_running {
        report.endpoints = Some(endpoints(&w));
        let all_ok = report.phases.iter().all(|p| p.ok);
        report.finish()?;
        keep_running(&w).await?;
        w.node.shutdown(Duration::ZERO).await;
        return Ok(if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let code = report.finish();
    w.node.shutdown(Duration::ZERO).await;
    code
}

fn endpoints(w: &world::World) -> serde_json::Value {
    let node = &w.node;
    let gateway: serde_json::Map<String, serde_json::Value> = node
        .gateway_listeners()
        .into_iter()
        .map(|(name, addr)| (name, addr.to_string().into()))
        .collect();
    serde_json::json!({
        "data_dir": w.dir.path(),
        "trust_chain": smtrust_ca::home::ca_dir(w.dir.path()).join("chain.pem"),
        "api": format!("https://localhost:{}", node.api_addr.port()),
        "http": format!("http://{}", node.http_addr),
        "gateway": gateway,
        "devices": w.dir.path().join("devices"),
    })
}

async fn keep_running(w: &world::World) -> anyhow::Result<()> {
    let node = &w.node;
    eprintln!();
    eprintln!(
        "smtrust keeps running (Ctrl-C stops it and removes {}):",
        w.dir.path().display()
    );
    eprintln!("  data directory        {}", w.dir.path().display());
    eprintln!(
        "  trust chain           {}",
        smtrust_ca::home::ca_dir(w.dir.path())
            .join("chain.pem")
            .display()
    );
    eprintln!(
        "  API (TLS 1.3-SM)      https://localhost:{}  (EST /.well-known/est/, attestation /attest/v1/)",
        node.api_addr.port()
    );
    eprintln!(
        "  CRL / OCSP            http://{}/crl/{}.crl  http://{}/ocsp/{}",
        node.http_addr,
        world::LABEL,
        node.http_addr,
        world::LABEL
    );
    for (name, addr) in node.gateway_listeners() {
        eprintln!("  gateway {name:<13} {addr}");
    }
    eprintln!(
        "  device identities     {}/devices/<id>/ (agent directories)",
        w.dir.path().display()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
