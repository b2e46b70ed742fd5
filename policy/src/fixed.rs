//! Policies whose outcome is fixed for a principal: their resource scope is `resource` or
//! `resource is T` and their conditions never read `resource` or `context`. For one principal
//! and one action such a policy is satisfied, or not, or fails, whatever the request; so it is
//! evaluated once per principal and bundle (when the principal's entities are built) and a
//! decision only hands Cedar the policies that depend on the request. The result equals one
//! Cedar call over all policies: Cedar decides each policy on its own and combines
//! (forbid wins, then permit, else deny), which `decision` redoes with the stored outcomes.

use crate::bundle::{ActionKind, Names};
use cedar_policy::{
    AuthorizationError, Authorizer, Context, Entities, EntityId, EntityUid, Policy, PolicySet,
    Request, ResourceConstraint,
};
use std::collections::HashMap;

/// True when `p`'s outcome for a principal and action cannot depend on the request.
pub(crate) fn is_principal_only(p: &Policy) -> bool {
    let scope_ok = matches!(
        p.resource_constraint(),
        ResourceConstraint::Any | ResourceConstraint::Is(_)
    );
    // The JSON form names every variable a condition reads as {"Var": "..."}; anything we
    // cannot render is treated as request-dependent.
    scope_ok && p.to_json().is_ok_and(|json| !reads_request(&json))
}

fn reads_request(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(k, v)| (k == "Var" && (v == "resource" || v == "context")) || reads_request(v)),
        serde_json::Value::Array(items) => items.iter().any(reads_request),
        _ => false,
    }
}

/// One action's principal-only policies, numbered by slot.
#[derive(Default)]
pub(crate) struct FixedPolicies {
    /// Satisfied permits are all reported only when no forbid is in the same set.
    permits: PolicySet,
    forbids: PolicySet,
    slot_of: HashMap<String, usize>,
    /// Slot → (policy id, forbid).
    pub(crate) ids: Vec<(String, bool)>,
    /// Slots of the unannotated ones (always considered); topic rules are considered only
    /// when their filter applies.
    pub(crate) unannotated: Vec<usize>,
}

impl FixedPolicies {
    /// Adds `p` and returns its slot.
    pub(crate) fn add(
        &mut self,
        p: &Policy,
        forbid: bool,
        unannotated: bool,
    ) -> Result<usize, crate::Error> {
        let slot = self.ids.len();
        if forbid {
            self.forbids.add(p.clone())?;
        } else {
            self.permits.add(p.clone())?;
        }
        let id = p.id().to_string();
        self.slot_of.insert(id.clone(), slot);
        self.ids.push((id, forbid));
        if unannotated {
            self.unannotated.push(slot);
        }
        Ok(slot)
    }
}

/// How a principal-only policy came out for one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    NotSatisfied,
    Satisfied,
    /// Cedar skipped it with this error (the message names the policy).
    Error(String),
}

/// Per action (`ActionKind as usize`), per slot.
pub(crate) type Outcomes = [Vec<Outcome>; 4];

/// Evaluates every principal-only policy for `principal` once per action.
pub(crate) fn evaluate(
    fixed: &[FixedPolicies; 4],
    names: &Names,
    authorizer: &Authorizer,
    principal: &EntityUid,
    entities: &Entities,
) -> Outcomes {
    let mut out: Outcomes = Default::default();
    for kind in ActionKind::ALL {
        let policies = &fixed[kind as usize];
        let mut outcomes = vec![Outcome::NotSatisfied; policies.ids.len()];
        if !outcomes.is_empty() {
            // The resource's type is the action's; its id and the context are never read.
            let resource_type = match kind {
                ActionKind::Connect => &names.listener,
                ActionKind::HttpRequest => &names.route,
                ActionKind::Publish | ActionKind::Subscribe => &names.topic,
            };
            let resource =
                EntityUid::from_type_name_and_id(resource_type.clone(), EntityId::new(""));
            let request = Request::new(
                principal.clone(),
                names.action(kind).clone(),
                resource,
                Context::empty(),
                None,
            );
            for set in [&policies.permits, &policies.forbids] {
                let Ok(request) = &request else {
                    // Cannot happen without a schema; fail closed on every policy.
                    for o in &mut outcomes {
                        *o = Outcome::Error("request".to_owned());
                    }
                    break;
                };
                if set.is_empty() {
                    continue;
                }
                let response = authorizer.is_authorized(request, set, entities);
                for id in response.diagnostics().reason() {
                    if let Some(o) = policies
                        .slot_of
                        .get(id.to_string().as_str())
                        .and_then(|s| outcomes.get_mut(*s))
                    {
                        *o = Outcome::Satisfied;
                    }
                }
                for e in response.diagnostics().errors() {
                    let AuthorizationError::PolicyEvaluationError(pe) = e;
                    if let Some(o) = policies
                        .slot_of
                        .get(pe.policy_id().to_string().as_str())
                        .and_then(|s| outcomes.get_mut(*s))
                    {
                        *o = Outcome::Error(e.to_string());
                    }
                }
            }
        }
        out[kind as usize] = outcomes;
    }
    out
}
