//! A policy bundle: Cedar schema + policies + entity data, validated strictly and compiled
//! (topic rules indexed) before it can be used. A `Bundle` value is always valid.

use crate::Error;
use crate::fixed::{FixedPolicies, is_principal_only};
use crate::mqtt::trie::RuleTrie;
use crate::rule::{RuleError, TopicTemplate};
use cedar_policy::{
    ActionConstraint, Authorizer, Effect, Entities, EntityTypeName, EntityUid, Policy, PolicyId,
    PolicySet, Schema, ValidationMode, Validator,
};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The annotation naming a policy's stable id (kept across versions, used in decisions).
pub const ID_ANNOTATION: &str = "id";
/// The annotation carrying a topic rule's MQTT filter.
pub const TOPIC_ANNOTATION: &str = "topic";

/// The bundle a new install starts with (see `policy/default/`).
pub mod default {
    /// Cedar schema, in the Cedar schema syntax.
    pub const SCHEMA: &str = include_str!("../default/schema.cedarschema");
    /// Cedar policies.
    pub const POLICIES: &str = include_str!("../default/policies.cedar");
    /// Entity data, Cedar JSON entity format.
    pub const ENTITIES: &str = include_str!("../default/entities.json");
}

/// The three texts a bundle is made of, as an operator keeps them in files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::exhaustive_structs)] // exactly these three parts, by design
pub struct BundleSources {
    /// Cedar schema, in the Cedar schema syntax.
    pub schema: String,
    /// Cedar policies; `@id("…")` names a policy, `@topic("…")` makes it a topic rule.
    pub policies: String,
    /// Entity data (groups, device records), Cedar JSON entity format.
    pub entities: String,
}

impl BundleSources {
    /// The default bundle's sources.
    pub fn default_bundle() -> Self {
        Self {
            schema: default::SCHEMA.to_owned(),
            policies: default::POLICIES.to_owned(),
            entities: default::ENTITIES.to_owned(),
        }
    }
}

/// The four things a principal can ask to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ActionKind {
    Connect = 0,
    HttpRequest = 1,
    Publish = 2,
    Subscribe = 3,
}

impl ActionKind {
    pub(crate) const ALL: [ActionKind; 4] = [
        ActionKind::Connect,
        ActionKind::HttpRequest,
        ActionKind::Publish,
        ActionKind::Subscribe,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            ActionKind::Connect => "connect",
            ActionKind::HttpRequest => "http_request",
            ActionKind::Publish => "publish",
            ActionKind::Subscribe => "subscribe",
        }
    }
}

/// Entity type names and action ids the engine builds requests with, checked against the
/// schema when the bundle is compiled.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) device: EntityTypeName,
    pub(crate) admin: EntityTypeName,
    pub(crate) group: EntityTypeName,
    pub(crate) listener: EntityTypeName,
    pub(crate) route: EntityTypeName,
    pub(crate) topic: EntityTypeName,
    pub(crate) actions: [EntityUid; 4],
}

impl Names {
    fn from_schema(schema: &Schema) -> Result<Self, Error> {
        let ty = |name: &str| {
            let t = EntityTypeName::from_str(name).map_err(|_| Error::SchemaMissing {
                name: name.to_owned(),
            })?;
            if schema.entity_types().any(|s| *s == t) {
                Ok(t)
            } else {
                Err(Error::SchemaMissing {
                    name: name.to_owned(),
                })
            }
        };
        let action = |kind: ActionKind| {
            let text = format!("Action::\"{}\"", kind.name());
            let uid = EntityUid::from_str(&text)
                .map_err(|_| Error::SchemaMissing { name: text.clone() })?;
            if schema.actions().any(|a| *a == uid) {
                Ok(uid)
            } else {
                Err(Error::SchemaMissing { name: text })
            }
        };
        Ok(Self {
            device: ty("Device")?,
            admin: ty("Admin")?,
            group: ty("Group")?,
            listener: ty("Listener")?,
            route: ty("Route")?,
            topic: ty("Topic")?,
            actions: [
                action(ActionKind::Connect)?,
                action(ActionKind::HttpRequest)?,
                action(ActionKind::Publish)?,
                action(ActionKind::Subscribe)?,
            ],
        })
    }

    pub(crate) fn action(&self, kind: ActionKind) -> &EntityUid {
        &self.actions[kind as usize]
    }
}

/// One `@topic` policy, compiled.
pub(crate) struct TopicRule {
    pub(crate) policy_id: String,
    pub(crate) template: TopicTemplate,
    pub(crate) forbid: bool,
    /// A set holding only this policy, for when several rules apply at once.
    pub(crate) set: PolicySet,
    /// Per action (`ActionKind as usize`): this policy plus the action's request-dependent
    /// unannotated policies, so the common case (one rule applies) is a single Cedar call.
    pub(crate) with_unannotated: [Option<PolicySet>; 4],
    /// Per action: the slot in [`Bundle::fixed`] when the outcome is fixed per principal.
    pub(crate) fixed_slot: [Option<usize>; 4],
}

/// A validated, compiled policy bundle. Cheap to share behind an `Arc`.
pub struct Bundle {
    instance_id: u64,
    sources: BundleSources,
    schema: Schema,
    policies: PolicySet,
    entities: Entities,
    names: Names,
    /// Policies without `@topic` that depend on the request, per action they can apply to.
    unannotated: [Option<PolicySet>; 4],
    /// Per action: the policies whose outcome is fixed per principal (evaluated once per
    /// principal, see `fixed`).
    pub(crate) fixed: [FixedPolicies; 4],
    pub(crate) rules: Vec<TopicRule>,
    pub(crate) publish_index: RuleTrie,
    pub(crate) subscribe_index: RuleTrie,
    pub(crate) authorizer: Authorizer,
}

/// Distinguishes compiled bundles so a principal's cached entities are never reused across them.
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

impl Bundle {
    /// Parses, strictly validates and compiles a bundle. Nothing partial is ever returned.
    pub fn compile(sources: BundleSources) -> Result<Self, Error> {
        let (schema, _warnings) = Schema::from_cedarschema_str(&sources.schema)?;
        let names = Names::from_schema(&schema)?;
        let parsed = PolicySet::from_str(&sources.policies)?;
        if let Some(t) = parsed.templates().next() {
            return Err(Error::Template {
                policy_id: t.id().to_string(),
            });
        }
        let mut policies = PolicySet::new();
        for p in parsed.policies() {
            let p = match p.annotation(ID_ANNOTATION) {
                Some(id) => p.new_id(PolicyId::new(id)),
                None => p.clone(),
            };
            policies.add(p)?;
        }
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            return Err(Error::Validation {
                errors: result
                    .validation_errors()
                    .map(ToString::to_string)
                    .collect(),
            });
        }
        let entities = Entities::from_json_str(&sources.entities, Some(&schema))?;

        let mut unannotated: [Option<PolicySet>; 4] = Default::default();
        let mut fixed: [FixedPolicies; 4] = Default::default();
        let mut rules = Vec::new();
        let mut publish_index = RuleTrie::default();
        let mut subscribe_index = RuleTrie::default();
        for p in policies.policies() {
            let kinds = applies_to(p, &names);
            let principal_only = is_principal_only(p);
            let forbid = p.effect() == Effect::Forbid;
            let Some(text) = p.annotation(TOPIC_ANNOTATION) else {
                for kind in kinds {
                    if principal_only {
                        fixed[kind as usize].add(p, forbid, true)?;
                    } else {
                        unannotated[kind as usize]
                            .get_or_insert_with(PolicySet::new)
                            .add(p.clone())?;
                    }
                }
                continue;
            };
            let rule_err = |source| Error::TopicRule {
                policy_id: p.id().to_string(),
                source,
            };
            let template = TopicTemplate::parse(text).map_err(rule_err)?;
            let topic_only = matches!(
                p.action_constraint(),
                ActionConstraint::Eq(_) | ActionConstraint::In(_)
            ) && kinds
                .iter()
                .all(|k| matches!(k, ActionKind::Publish | ActionKind::Subscribe));
            if !topic_only || kinds.is_empty() {
                return Err(rule_err(RuleError::ActionScope));
            }
            let index = rules.len();
            for kind in &kinds {
                let trie = match kind {
                    ActionKind::Publish => &mut publish_index,
                    _ => &mut subscribe_index,
                };
                trie.insert(&template.literal_prefix(), index, forbid);
            }
            let mut set = PolicySet::new();
            set.add(p.clone())?;
            let mut with_unannotated: [Option<PolicySet>; 4] = Default::default();
            let mut fixed_slot = [None; 4];
            for kind in kinds {
                if principal_only {
                    fixed_slot[kind as usize] = Some(fixed[kind as usize].add(p, forbid, false)?);
                } else {
                    with_unannotated[kind as usize] = Some(set.clone());
                }
            }
            rules.push(TopicRule {
                policy_id: p.id().to_string(),
                template,
                forbid,
                set,
                with_unannotated,
                fixed_slot,
            });
        }
        // Unannotated policies are all known only now; add them to each rule's combined sets.
        for rule in &mut rules {
            for (kind, combined) in rule.with_unannotated.iter_mut().enumerate() {
                if let (Some(combined), Some(base)) = (combined, &unannotated[kind]) {
                    for p in base.policies() {
                        combined.add(p.clone())?;
                    }
                }
            }
        }
        Ok(Self {
            instance_id: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            sources,
            schema,
            policies,
            entities,
            names,
            unannotated,
            fixed,
            rules,
            publish_index,
            subscribe_index,
            authorizer: Authorizer::new(),
        })
    }

    /// The default bundle shipped with the crate.
    pub fn default_bundle() -> Result<Self, Error> {
        Self::compile(BundleSources::default_bundle())
    }

    /// The texts this bundle was compiled from.
    pub fn sources(&self) -> &BundleSources {
        &self.sources
    }

    /// All policies, with ids taken from `@id` annotations where present.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// The validated schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The entity data (groups, device records).
    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    /// How many `@topic` rules the bundle has.
    pub fn topic_rule_count(&self) -> usize {
        self.rules.len()
    }

    pub(crate) fn instance_id(&self) -> u64 {
        self.instance_id
    }

    pub(crate) fn names(&self) -> &Names {
        &self.names
    }

    pub(crate) fn unannotated(&self, kind: ActionKind) -> Option<&PolicySet> {
        self.unannotated[kind as usize].as_ref()
    }
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("policies", &self.policies.policies().count())
            .field("topic_rules", &self.rules.len())
            .field("entities", &self.entities.len())
            .finish_non_exhaustive()
    }
}

/// The actions a policy's scope admits (our schema has no action groups).
pub(crate) fn applies_to(p: &Policy, names: &Names) -> Vec<ActionKind> {
    let admits = |uid: &EntityUid| match p.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => a == *uid,
        ActionConstraint::In(list) => list.contains(uid),
    };
    ActionKind::ALL
        .into_iter()
        .filter(|k| admits(names.action(*k)))
        .collect()
}
