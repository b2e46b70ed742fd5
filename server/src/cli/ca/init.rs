//! `smtrust ca init`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use smtrust_ca::Namespace;
use smtrust_ca::home::{Import, InitOptions};
use smtrust_keystore::{Argon2Params, InitMethod, Keystore};
use zeroize::Zeroizing;

use crate::cli::keystore::{UnlockArgs, keystore_dir, open_unsealed};
use crate::cli::secret;

/// Create the CA in the data directory: a root and an issuing CA (keys in the keystore, certificates in
/// <data-dir>/ca/, records in <data-dir>/smtrust.db), the issuing CA's delegated OCSP signer and a first CRL.
/// With --import-cert/--import-key an externally made root (a new issuing CA is made below it) or
/// intermediate (it becomes the issuing CA; the root stays offline) is used instead.
/// The keystore is created with the given passphrase if it does not exist yet.
///
/// The issuing CA only issues device IDs starting with --namespace (enforced at issuance: RFC 5280 URI name
/// constraints cannot express a URN prefix; see docs/architecture.md).
///
/// EXAMPLES:
///   SMTRUST_PASSPHRASE=... smtrust --data-dir /var/lib/smtrust ca init --label line7 --namespace ctw- \
///       --organization "Example Devices" --base-url http://ca.example:8080
///   smtrust ca init --label line7 --import-cert line7-ca-chain.pem --import-key line7-ca.key
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct InitArgs {
    /// Label of the issuing CA (used in URLs and records).
    #[arg(long, default_value = "devices")]
    label: String,
    /// Device-ID namespace: the issuing CA issues only IDs with this prefix (empty: any).
    #[arg(long, default_value = "")]
    namespace: String,
    /// `O=` of device certificate subjects.
    #[arg(long)]
    organization: Option<String>,
    /// Root subject (RFC 4514).
    #[arg(long, default_value = "CN=smtrust root CA")]
    root_subject: String,
    /// Issuing CA subject (RFC 4514); default `CN=smtrust <label> CA`.
    #[arg(long)]
    subject: Option<String>,
    /// Base URL of `smtrust serve` (CRL distribution point, OCSP and caIssuers URLs derive from it).
    #[arg(long)]
    base_url: Option<String>,
    /// Import this CA certificate (PEM; an intermediate followed by the certificates up to its root).
    #[arg(long, requires = "import_key")]
    import_cert: Option<PathBuf>,
    /// The imported CA's private key (PKCS#8 or SEC1, PEM or DER).
    #[arg(long, requires = "import_cert")]
    import_key: Option<PathBuf>,
    /// Passphrase file of an encrypted --import-key.
    #[arg(long)]
    import_key_passphrase_file: Option<PathBuf>,
}

pub(super) fn run(
    a: &InitArgs,
    dir: &Path,
    unlock: &UnlockArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if smtrust_ca::home::is_initialised(dir) {
        anyhow::bail!(
            "a CA already exists in {} (use another --data-dir)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if !keystore_dir(dir).exists() && unlock.share_file.is_none() {
        let p = secret::passphrase(
            unlock.passphrase_file.as_deref(),
            "new keystore passphrase: ",
        )?;
        anyhow::ensure!(
            p.len() >= 12,
            "a keystore passphrase needs at least 12 bytes"
        );
        Keystore::init_dir(
            &keystore_dir(dir),
            InitMethod::Passphrase {
                passphrase: &p,
                params: Argon2Params::DEFAULT,
            },
        )?;
        eprintln!("keystore created at {}", keystore_dir(dir).display());
    }
    let ks = open_unsealed(dir, unlock)?;
    let mut opts = InitOptions::new(&a.label);
    opts.root_subject.clone_from(&a.root_subject);
    if let Some(s) = &a.subject {
        opts.subject.clone_from(s);
    }
    opts.namespace = Namespace::new(&a.namespace)?;
    opts.organization.clone_from(&a.organization);
    opts.base_url.clone_from(&a.base_url);
    if let (Some(c), Some(k)) = (&a.import_cert, &a.import_key) {
        let cert = std::fs::read(c).with_context(|| format!("reading {}", c.display()))?;
        let key =
            Zeroizing::new(std::fs::read(k).with_context(|| format!("reading {}", k.display()))?);
        let mut imp = Import::new(cert, key);
        if let Some(p) = &a.import_key_passphrase_file {
            imp.passphrase = Some(secret::passphrase(Some(p), "")?);
        }
        opts.import = Some(imp);
    }
    let rt = super::runtime()?;
    let res = rt.block_on(smtrust_ca::home::init(dir, &ks, opts, super::now()));
    ks.seal();
    let ca = res?;
    let m = &ca.manifest;
    let cdir = smtrust_ca::home::ca_dir(dir);
    let subject = ca.issuing.subject().to_string();
    let fpr = hex::encode(smtrust_crypto::sm3::digest(ca.issuing.certificate_der()));
    if json {
        println!(
            "{}",
            serde_json::json!({
                "label": m.label, "subject": subject, "namespace": m.namespace,
                "root_offline": m.root_key.is_none(), "sm3_fingerprint": fpr,
                "chain": cdir.join("chain.pem"), "database": dir.join(smtrust_ca::home::DB_FILE),
            })
        );
    } else {
        println!("issuing CA {:?}: {subject}", m.label);
        println!("  namespace   {:?}", m.namespace);
        println!("  SM3         {fpr}");
        println!("  chain       {}", cdir.join("chain.pem").display());
        if m.root_key.is_none() {
            println!("  root        offline (imported intermediate)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
