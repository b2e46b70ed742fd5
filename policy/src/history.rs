//! Differences between two bundles: per policy (by id), as line diffs of the policy text.

use crate::bundle::Bundle;
use std::collections::BTreeMap;
use std::fmt;

/// How one policy changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyChange {
    /// Only in the newer bundle.
    Added {
        /// Policy id.
        id: String,
        /// Its text.
        text: String,
    },
    /// Only in the older bundle.
    Removed {
        /// Policy id.
        id: String,
        /// Its text.
        text: String,
    },
    /// In both, with different text.
    Changed {
        /// Policy id.
        id: String,
        /// Line diff, each line prefixed with ` `, `-` or `+`.
        diff: String,
    },
}

/// What changed between two bundles.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BundleDiff {
    /// The schema text differs.
    pub schema_changed: bool,
    /// The entity data text differs.
    pub entities_changed: bool,
    /// Policy changes, ordered by id.
    pub policies: Vec<PolicyChange>,
}

impl BundleDiff {
    /// Compares `old` with `new`.
    pub fn between(old: &Bundle, new: &Bundle) -> Self {
        let texts = |b: &Bundle| -> BTreeMap<String, String> {
            b.policies()
                .policies()
                .map(|p| (p.id().to_string(), p.to_string()))
                .collect()
        };
        let (a, b) = (texts(old), texts(new));
        let mut policies = Vec::new();
        for (id, text) in &a {
            match b.get(id) {
                None => policies.push(PolicyChange::Removed {
                    id: id.clone(),
                    text: text.clone(),
                }),
                Some(t) if t != text => policies.push(PolicyChange::Changed {
                    id: id.clone(),
                    diff: line_diff(text, t),
                }),
                Some(_) => {}
            }
        }
        for (id, text) in &b {
            if !a.contains_key(id) {
                policies.push(PolicyChange::Added {
                    id: id.clone(),
                    text: text.clone(),
                });
            }
        }
        policies.sort_by(|x, y| change_id(x).cmp(change_id(y)));
        Self {
            schema_changed: old.sources().schema != new.sources().schema,
            entities_changed: old.sources().entities != new.sources().entities,
            policies,
        }
    }

    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        !self.schema_changed && !self.entities_changed && self.policies.is_empty()
    }
}

fn change_id(c: &PolicyChange) -> &str {
    match c {
        PolicyChange::Added { id, .. }
        | PolicyChange::Removed { id, .. }
        | PolicyChange::Changed { id, .. } => id,
    }
}

/// A line diff from the longest common subsequence; policies are short, so O(n·m) is fine.
fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // lcs[i][j] = LCS length of a[i..] and b[j..]
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}

impl fmt::Display for BundleDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.schema_changed {
            writeln!(f, "schema changed")?;
        }
        if self.entities_changed {
            writeln!(f, "entities changed")?;
        }
        for c in &self.policies {
            match c {
                PolicyChange::Added { id, text } => {
                    writeln!(f, "+++ policy {id} (added)")?;
                    text.lines().try_for_each(|l| writeln!(f, "+{l}"))?;
                }
                PolicyChange::Removed { id, text } => {
                    writeln!(f, "--- policy {id} (removed)")?;
                    text.lines().try_for_each(|l| writeln!(f, "-{l}"))?;
                }
                PolicyChange::Changed { id, diff } => {
                    writeln!(f, "*** policy {id} (changed)")?;
                    f.write_str(diff)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn line_diff_marks_changes() {
        let d = line_diff("a\nb\nc", "a\nx\nc\nd");
        assert_eq!(d, " a\n-b\n+x\n c\n+d\n");
    }
}
