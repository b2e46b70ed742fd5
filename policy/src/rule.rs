//! Topic rules: the `@topic("…")` annotation of a Cedar policy, a filter whose variables are
//! bound to the verified identity of the principal.
//!
//! Variables are written `{device.id}`, `{device.product}`, `{device.factory}`,
//! `{device.firmware}` and `{client_id}`; they may fill a whole level or part of one
//! (`tenant-{device.product}`). Braces are reserved: a literal `{` or `}` is refused. A bound
//! value that is empty or holds `/`, `+`, `#` or NUL leaves the rule unbound, so an identity can
//! never widen a rule into a wildcard.

use crate::mqtt::{TopicError, TopicFilter};
use std::fmt;

/// A value of the verified identity a topic rule may refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Variable {
    /// `{device.id}`: the device ID from the certificate.
    DeviceId,
    /// `{device.product}`.
    Product,
    /// `{device.factory}`.
    Factory,
    /// `{device.firmware}`.
    Firmware,
    /// `{client_id}`: the MQTT ClientId of this connection.
    ClientId,
}

impl Variable {
    const ALL: [Variable; 5] = [
        Variable::DeviceId,
        Variable::Product,
        Variable::Factory,
        Variable::Firmware,
        Variable::ClientId,
    ];

    /// The name written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Variable::DeviceId => "device.id",
            Variable::Product => "device.product",
            Variable::Factory => "device.factory",
            Variable::Firmware => "device.firmware",
            Variable::ClientId => "client_id",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.name())
    }
}

/// Why a `@topic` annotation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A `{` without `}`, a stray `}`, or braces inside a variable.
    #[error("unbalanced brace at byte {position}")]
    Brace {
        /// Offset in the annotation.
        position: usize,
    },
    /// `{name}` is not one of the known variables.
    #[error("unknown variable {name:?} at byte {position}")]
    UnknownVariable {
        /// The name between the braces.
        name: String,
        /// Offset of the `{`.
        position: usize,
    },
    /// With each variable replaced by a sample value, the text is not a valid filter.
    #[error("not a valid topic filter: {0}")]
    Filter(#[source] TopicError),
    /// Rules speak about topics; `$share/` belongs to subscriptions, not rules.
    #[error("a topic rule cannot be a shared subscription")]
    Shared,
    /// The policy's action scope must be `publish`, `subscribe`, or both.
    #[error("a @topic policy must be scoped to the publish and/or subscribe actions")]
    ActionScope,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Var(Variable),
}

/// A parsed `@topic` annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicTemplate {
    source: String,
    pieces: Vec<Piece>,
}

/// Supplies bound values; `None` when the principal has no usable value.
pub(crate) trait Bindings {
    fn value(&self, var: Variable) -> Option<&str>;
}

/// True when `value` can stand in for (part of) one topic level.
pub(crate) fn is_bindable(value: &str) -> bool {
    !value.is_empty() && !value.contains(['/', '+', '#', '\0'])
}

impl TopicTemplate {
    pub(crate) fn parse(source: &str) -> Result<Self, RuleError> {
        let mut pieces = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    pieces.push(Piece::Literal(rest.to_owned()));
                    break;
                }
                Some(i) => {
                    let (lit, tail) = rest.split_at(i);
                    if !lit.is_empty() {
                        pieces.push(Piece::Literal(lit.to_owned()));
                    }
                    let position = offset + i;
                    let inner = tail
                        .strip_prefix('{')
                        .ok_or(RuleError::Brace { position })?;
                    let close = inner.find('}').ok_or(RuleError::Brace { position })?;
                    let name = inner.get(..close).unwrap_or_default();
                    if name.contains('{') {
                        return Err(RuleError::Brace { position });
                    }
                    let var =
                        Variable::from_name(name).ok_or_else(|| RuleError::UnknownVariable {
                            name: name.to_owned(),
                            position,
                        })?;
                    pieces.push(Piece::Var(var));
                    let used = i + 1 + close + 1;
                    rest = rest.get(used..).unwrap_or_default();
                    offset += used;
                }
            }
        }
        let template = Self {
            source: source.to_owned(),
            pieces,
        };
        // Validate the shape once with a sample value in every variable.
        let sample = template.render(|_| Some("v")).unwrap_or_default();
        let filter = TopicFilter::parse(&sample).map_err(RuleError::Filter)?;
        if filter.share_name().is_some() {
            return Err(RuleError::Shared);
        }
        Ok(template)
    }

    /// The whole literal levels before the first variable or wildcard: the trie key.
    pub(crate) fn literal_prefix(&self) -> Vec<&str> {
        let mut text = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => text.push_str(s),
                Piece::Var(_) => {
                    text.push('{');
                    break;
                }
            }
        }
        let levels: Vec<&str> = text.split('/').collect();
        let count = levels
            .iter()
            .position(|l| *l == "+" || *l == "#" || l.contains('{'))
            // A fully literal rule is its own prefix.
            .unwrap_or(levels.len());
        // Return slices of the source, which starts with the same literal text.
        self.source.split('/').take(count).collect()
    }

    fn render<'a>(&self, value: impl Fn(Variable) -> Option<&'a str>) -> Option<String> {
        let mut out = String::with_capacity(self.source.len() + 16);
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Var(v) => out.push_str(value(*v).filter(|s| is_bindable(s))?),
            }
        }
        Some(out)
    }

    /// The filter for this principal, or the first variable it cannot bind.
    pub(crate) fn bind(&self, bindings: &dyn Bindings) -> Result<TopicFilter, Variable> {
        let text = self.render(|v| bindings.value(v));
        let unbound = || {
            self.pieces
                .iter()
                .find_map(|p| match p {
                    Piece::Var(v) if !bindings.value(*v).is_some_and(is_bindable) => Some(*v),
                    _ => None,
                })
                .unwrap_or(Variable::DeviceId)
        };
        let text = text.ok_or_else(unbound)?;
        // Bound values were checked to be level-safe, so this parses; fail closed if not.
        TopicFilter::parse(&text).map_err(|_| unbound())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Map(Vec<(Variable, &'static str)>);
    impl Bindings for Map {
        fn value(&self, var: Variable) -> Option<&str> {
            self.0.iter().find(|(v, _)| *v == var).map(|(_, s)| *s)
        }
    }

    #[test]
    fn parses_and_binds_variables() {
        let t = TopicTemplate::parse("devices/{device.id}/up/#")
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(t.literal_prefix(), vec!["devices"]);
        let f = t.bind(&Map(vec![(Variable::DeviceId, "d1")]));
        assert_eq!(f.map(|f| f.to_string()), Ok("devices/d1/up/#".to_string()));
        let t = TopicTemplate::parse("t/{device.product}-{client_id}/x")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let f = t.bind(&Map(vec![
            (Variable::Product, "meter"),
            (Variable::ClientId, "c9"),
        ]));
        assert_eq!(f.map(|f| f.to_string()), Ok("t/meter-c9/x".to_string()));
        assert_eq!(t.literal_prefix(), vec!["t"]);
    }

    #[test]
    fn identity_values_cannot_become_wildcards() {
        let t =
            TopicTemplate::parse("devices/{client_id}/up").unwrap_or_else(|e| unreachable!("{e}"));
        for evil in ["+", "#", "a/b", "", "a\0"] {
            let got = t.bind(&Map(vec![(Variable::ClientId, leak(evil))]));
            assert_eq!(got, Err(Variable::ClientId), "{evil:?}");
        }
        assert_eq!(t.bind(&Map(vec![])), Err(Variable::ClientId));
    }

    fn leak(s: &str) -> &'static str {
        Box::leak(s.to_owned().into_boxed_str())
    }

    #[test]
    fn refuses_bad_annotations() {
        assert_eq!(
            TopicTemplate::parse("a/{device.id"),
            Err(RuleError::Brace { position: 2 })
        );
        assert_eq!(
            TopicTemplate::parse("a/}"),
            Err(RuleError::Brace { position: 2 })
        );
        assert_eq!(
            TopicTemplate::parse("a/{user}"),
            Err(RuleError::UnknownVariable {
                name: "user".into(),
                position: 2
            })
        );
        assert!(matches!(
            TopicTemplate::parse("a/{device.id}#"),
            Err(RuleError::Filter(_))
        ));
        assert_eq!(TopicTemplate::parse("$share/g/a"), Err(RuleError::Shared));
    }

    #[test]
    fn literal_prefix_stops_at_wildcards() {
        let p = |s: &str| {
            TopicTemplate::parse(s)
                .map(|t| t.literal_prefix().join("|"))
                .unwrap_or_else(|e| unreachable!("{e}"))
        };
        assert_eq!(p("a/b/c"), "a|b|c");
        assert_eq!(p("a/+/c"), "a");
        assert_eq!(p("#"), "");
        assert_eq!(p("a/x{device.id}/c"), "a");
        assert_eq!(p("/a/#"), "|a");
    }
}
