//! Bundle version history in the data directory, as plain files:
//!
//! ```text
//! <data-dir>/policy/versions/000001/{schema.cedarschema, policies.cedar, entities.json, meta.json}
//! <data-dir>/policy/active          # the active version number, replaced atomically (rename)
//! ```
//!
//! Files rather than SQLite: a bundle *is* three text files that operators keep in git, so a
//! stored version stays readable and diffable with ordinary tools; versions are immutable once
//! written, so the only mutable state is one small pointer file. A new version number is claimed
//! with `create_dir`, which fails if another `apply` took it first, so concurrent applies
//! cannot overwrite each other. With no version stored, the default bundle is active (version 0).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use smtrust_policy::{Bundle, BundleSources};

pub(crate) const SCHEMA_FILE: &str = "schema.cedarschema";
pub(crate) const POLICIES_FILE: &str = "policies.cedar";
pub(crate) const ENTITIES_FILE: &str = "entities.json";
const META_FILE: &str = "meta.json";

/// What `apply` recorded about a version.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Meta {
    pub(crate) version: u64,
    /// Unix seconds.
    pub(crate) applied_at: u64,
    /// The directory the bundle was read from.
    pub(crate) source: String,
    /// The operator's note (`--message`).
    #[serde(default)]
    pub(crate) message: String,
}

/// Reads a bundle directory: `policies.cedar` is required; a missing `schema.cedarschema` means
/// the default schema, a missing `entities.json` means no entities.
pub(crate) fn read_dir(dir: &Path) -> anyhow::Result<BundleSources> {
    let read = |name: &str| -> anyhow::Result<Option<String>> {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    };
    let Some(policies) = read(POLICIES_FILE)? else {
        bail!("{} has no {POLICIES_FILE}", dir.display());
    };
    Ok(BundleSources {
        schema: read(SCHEMA_FILE)?.unwrap_or_else(|| smtrust_policy::default::SCHEMA.to_owned()),
        policies,
        entities: read(ENTITIES_FILE)?.unwrap_or_else(|| "[]".to_owned()),
    })
}

/// The history under `<data-dir>/policy`.
pub(crate) struct Store {
    root: PathBuf,
}

impl Store {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("policy"),
        }
    }

    fn versions_dir(&self) -> PathBuf {
        self.root.join("versions")
    }

    fn version_dir(&self, version: u64) -> PathBuf {
        self.versions_dir().join(format!("{version:06}"))
    }

    /// Stored versions, ascending.
    pub(crate) fn versions(&self) -> anyhow::Result<Vec<u64>> {
        let dir = self.versions_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            // A directory without meta.json is an apply that did not finish; not a version.
            if let Some(v) = entry.file_name().to_str().and_then(|n| n.parse().ok())
                && entry.path().join(META_FILE).is_file()
            {
                out.push(v);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    pub(crate) fn meta(&self, version: u64) -> anyhow::Result<Meta> {
        let path = self.version_dir(version).join(META_FILE);
        let text =
            fs::read_to_string(&path).with_context(|| format!("no policy version {version}"))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The sources of `version`; version 0 is the shipped default bundle.
    pub(crate) fn sources(&self, version: u64) -> anyhow::Result<BundleSources> {
        if version == 0 {
            return Ok(BundleSources::default_bundle());
        }
        self.meta(version)?;
        read_dir(&self.version_dir(version))
    }

    /// The active version: the pointer file, else 0 (the default bundle).
    pub(crate) fn active(&self) -> anyhow::Result<u64> {
        let path = self.root.join("active");
        match fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse()
                .with_context(|| format!("{} is not a version number", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The active bundle, compiled: what `smtrust serve` should load at start.
    pub(crate) fn active_bundle(&self) -> anyhow::Result<(u64, Bundle)> {
        let version = self.active()?;
        let bundle = Bundle::compile(self.sources(version)?)
            .with_context(|| format!("policy version {version} no longer compiles"))?;
        Ok((version, bundle))
    }

    /// Points `active` at `version` (which must exist, or be 0), atomically.
    pub(crate) fn set_active(&self, version: u64) -> anyhow::Result<()> {
        if version != 0 {
            self.meta(version)?;
        }
        fs::create_dir_all(&self.root)?;
        let tmp = self.root.join(format!(".active.{}", std::process::id()));
        {
            let mut f = fs::File::create(&tmp)?;
            writeln!(f, "{version}")?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.root.join("active"))?;
        Ok(())
    }

    /// Stores `sources` (already validated by the caller) as the next version; not activated.
    pub(crate) fn add(
        &self,
        sources: &BundleSources,
        source: &Path,
        message: &str,
    ) -> anyhow::Result<u64> {
        fs::create_dir_all(self.versions_dir())?;
        let mut version = self.versions()?.last().copied().unwrap_or(0) + 1;
        let dir = loop {
            let dir = self.version_dir(version);
            match fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => version += 1,
                Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
            }
        };
        fs::write(dir.join(SCHEMA_FILE), &sources.schema)?;
        fs::write(dir.join(POLICIES_FILE), &sources.policies)?;
        fs::write(dir.join(ENTITIES_FILE), &sources.entities)?;
        #[allow(clippy::disallowed_methods)] // the CLI is where the clock is read
        let applied_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let meta = Meta {
            version,
            applied_at,
            source: source.display().to_string(),
            message: message.to_owned(),
        };
        // meta.json last: its presence marks the version complete.
        fs::write(dir.join(META_FILE), serde_json::to_vec_pretty(&meta)?)?;
        Ok(version)
    }
}
