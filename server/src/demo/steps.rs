//! The demo's phases, in trust-path order. Parts that have not landed yet are not shown.

use std::time::Instant;

use anyhow::Context;
use smtrust_crypto::sm2::{CertId, Sm2SecretKey, Sm2Signer, Tls13Id};
use smtrust_crypto::sm4::{AeadMode, Sm4Key};
use smtrust_crypto::{rng, sm2};

use super::{DemoArgs, Report};

/// Split `n` items over the machine's cores and collect the results in order.
fn par_map<T: Send>(
    n: usize,
    f: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .min(n.max(1));
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(n))
                        .map(f)
                        .collect::<anyhow::Result<Vec<T>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for h in handles {
            out.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("worker thread panicked"))??,
            );
        }
        Ok(out)
    })
}

pub(super) fn run_all(args: &DemoArgs, report: &mut Report) -> anyhow::Result<()> {
    let n = args.devices;

    // 1. Factory: every device gets its own SM2 key pair.
    let mut keys = Vec::new();
    let t = Instant::now();
    report.phase("factory: device key pairs", || {
        keys = par_map(n, |_| {
            Sm2SecretKey::generate().context("SM2 key generation")
        })?;
        Ok((
            keys.len(),
            keys.len() == n,
            "SM2 keys from the OS CSPRNG, all cores".into(),
        ))
    })?;
    report.figure(
        "device keys generated per second",
        n as f64 / t.elapsed().as_secs_f64(),
    );

    // 2. Identity: each device signs a fresh verifier nonce with its key (certificate ID); a signature made
    //    with the TLS 1.3 ID must not pass as an identity proof.
    let t = Instant::now();
    report.phase("attest: identity challenges", || {
        let verified = par_map(n, |i| {
            let nonce = rng::bytes::<32>()?;
            let key = keys.get(i).context("device index")?;
            let sig = key.signing_key(CertId)?.sign(&nonce)?;
            Ok(key
                .public_key()
                .verifying_key(CertId)?
                .verify(&nonce, &sig)
                .is_ok())
        })?;
        let good = verified.iter().filter(|v| **v).count();
        let wrong_id_refused = match keys.first() {
            Some(k) => {
                let sig = Sm2Signer::<Tls13Id>::sign(&k.signing_key(Tls13Id)?, b"nonce")?;
                k.public_key()
                    .verifying_key(CertId)?
                    .verify(b"nonce", &sig)
                    .is_err()
            }
            None => false,
        };
        Ok((
            good,
            good == n && wrong_id_refused,
            format!("{good}/{n} verified; TLS-ID signature refused: {wrong_id_refused}"),
        ))
    })?;
    report.figure(
        "identity proofs (sign + verify) per second",
        n as f64 / t.elapsed().as_secs_f64(),
    );

    // 3. Key envelopes: a per-device SM4 data key wrapped to the device's SM2 key opens the device's sealed
    //    configuration; a tampered configuration is refused.
    report.phase("provision: sealed configs", || {
        let opened = par_map(n, |i| {
            let key = keys.get(i).context("device index")?;
            let data_key = Sm4Key::generate()?;
            let envelope = sm2::encrypt_der(key.public_key(), data_key.expose_secret())?;
            let nonce = rng::bytes::<12>()?;
            let config = format!("{{\"device\":\"ctw-{i:010}\",\"broker\":\"mqtts://gateway\"}}");
            let sealed = smtrust_crypto::sm4::seal(
                AeadMode::Gcm,
                &data_key,
                &nonce,
                b"config",
                config.as_bytes(),
            )?;
            let unwrapped = Sm4Key::from_slice(&sm2::decrypt_der(key, &envelope)?)?;
            let plain =
                smtrust_crypto::sm4::open(AeadMode::Gcm, &unwrapped, &nonce, b"config", &sealed)?;
            let mut tampered = sealed.clone();
            if let Some(b) = tampered.first_mut() {
                *b ^= 1;
            }
            let refused =
                smtrust_crypto::sm4::open(AeadMode::Gcm, &unwrapped, &nonce, b"config", &tampered)
                    .is_err();
            Ok(plain == config.as_bytes() && refused)
        })?;
        let good = opened.iter().filter(|v| **v).count();
        Ok((
            good,
            good == n,
            "SM2 envelope → SM4-GCM; tampering refused".into(),
        ))
    })?;
    Ok(())
}
