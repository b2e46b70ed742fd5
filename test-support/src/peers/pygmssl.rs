//! PyPI `gmssl` 3.2.2 (pure-Python SM2/SM3/SM4) and `pkilint`, in the venv scripts/peers/python-venv.sh makes.

use std::ffi::OsStr;

use super::{NotFound, Peer, find_program};
use crate::{Error, Output, Tool};

/// The venv Python from `SMTRUST_PYTHON` or `${SMTRUST_CACHE}/venv/bin/python`, with gmssl 3.2.2 importable.
#[derive(Debug, Clone, Copy)]
pub struct PyGmssl;

/// A Python interpreter that can `import gmssl`; its `bin/` also holds pkilint's `lint_*` commands.
#[derive(Debug, Clone)]
pub struct Python {
    tool: Tool,
}

impl Python {
    /// The interpreter as a plain tool.
    pub fn tool(&self) -> &Tool {
        &self.tool
    }

    /// Runs `code` (`python -c`) with `args` in `sys.argv[1:]`.
    pub fn run_script<I, S>(&self, code: &str, args: I) -> Result<Output, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all = vec![OsStr::new("-c").to_owned(), OsStr::new(code).to_owned()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self.tool.run(all)
    }

    /// A console script installed in the venv beside the interpreter (e.g. `lint_pkix_cert`), if present.
    pub fn venv_command(&self, name: &str) -> Option<Tool> {
        let p = self.tool.program().with_file_name(name);
        p.is_file().then(|| Tool::new(p))
    }
}

impl Peer for PyGmssl {
    type Found = Python;
    const NAME: &'static str = "Python venv with PyPI gmssl 3.2.2";
    const SETUP: &'static str = "scripts/peers/python-venv.sh";

    fn locate(&self) -> Result<Python, NotFound> {
        let mut why = NotFound::default();
        let tool = find_program("SMTRUST_PYTHON", Some("venv/bin/python"), None, &mut why)
            .map(Tool::new)
            .ok_or_else(|| why.clone())?;
        let py = Python { tool };
        let probe =
            "from importlib.metadata import version; import gmssl.sm2; print(version('gmssl'))";
        match py.run_script(probe, [] as [&str; 0]) {
            Ok(out) if out.success() && out.stdout_str().trim() == "3.2.2" => Ok(py),
            Ok(out) => {
                why.tried(format!(
                    "{} cannot import gmssl 3.2.2: {}",
                    py.tool.program().display(),
                    out.combined().trim()
                ));
                Err(why)
            }
            Err(e) => {
                why.tried(e.to_string());
                Err(why)
            }
        }
    }
}
