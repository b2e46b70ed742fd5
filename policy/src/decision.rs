//! Deciding one request: Cedar for the conditions, exact MQTT semantics for the topics.
//!
//! Unannotated policies for the action go to Cedar as one set. `@topic` rules are found through
//! the prefix index, bound to the principal, and kept only when their filter applies:
//! PUBLISH — the filter matches the topic; SUBSCRIBE — a permit's filter *includes* the requested
//! filter (one permit must cover it all), a forbid's filter *overlaps* it. Cedar then evaluates
//! the kept rules together with the unannotated policies in one call (sets for the one-rule
//! case are precombined at compile time), so Cedar's own combination decides: any satisfied
//! forbid denies, else any satisfied permit allows, else deny.

use crate::bundle::{ActionKind, Bundle, TopicRule};
use crate::fixed::{FixedPolicies, Outcome};
use crate::mqtt::{TopicFilter, TopicName, includes, matches, overlaps};
use crate::principal::Principal;
use crate::rule::Variable;
use cedar_policy::{Context, EntityId, EntityUid, PolicySet, Request, RestrictedExpression};
use std::fmt;

/// What the principal asks to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Open a connection on a gateway listener (by its configured name).
    Connect {
        /// Listener name.
        listener: String,
    },
    /// Call an HTTP route.
    Http {
        /// Request method, e.g. `GET`.
        method: String,
        /// Request path, e.g. `/api/v1/devices/d1`.
        path: String,
    },
    /// Send an MQTT PUBLISH.
    Publish(TopicName),
    /// Send an MQTT SUBSCRIBE (one filter).
    Subscribe(TopicFilter),
}

impl Operation {
    pub(crate) fn kind(&self) -> ActionKind {
        match self {
            Operation::Connect { .. } => ActionKind::Connect,
            Operation::Http { .. } => ActionKind::HttpRequest,
            Operation::Publish(_) => ActionKind::Publish,
            Operation::Subscribe(_) => ActionKind::Subscribe,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Connect { listener } => write!(f, "connect {listener}"),
            Operation::Http { method, path } => write!(f, "http {method} {path}"),
            Operation::Publish(t) => write!(f, "publish {t}"),
            Operation::Subscribe(t) => write!(f, "subscribe {t}"),
        }
    }
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// This permit was satisfied.
    Permitted {
        /// Policy id.
        policy_id: String,
    },
    /// This forbid was satisfied.
    Forbidden {
        /// Policy id.
        policy_id: String,
    },
    /// No permit applied (Cedar's default deny).
    NoPermit,
    /// A policy failed to evaluate and was skipped (Cedar semantics).
    PolicyError {
        /// Cedar's message, which names the policy.
        message: String,
    },
    /// A topic rule refers to a value this principal lacks or cannot use in a topic. A permit
    /// is then skipped; a forbid is applied (fail closed).
    Unbound {
        /// The rule.
        policy_id: String,
        /// The variable.
        variable: Variable,
    },
    /// This kind of principal may not ask for this operation (admins only use HTTP).
    PrincipalType,
    /// The principal could not be turned into a Cedar entity.
    InvalidPrincipal {
        /// What went wrong.
        message: String,
    },
}

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decision {
    /// Allowed or not.
    pub allowed: bool,
    /// The policies that decided: satisfied permits when allowed, satisfied forbids when
    /// forbidden, none on a default deny.
    pub policy_ids: Vec<String>,
    /// The bundle version that decided; 0 for a bundle never activated (dry runs, tests).
    pub bundle_version: u64,
    /// Why, including skipped policies.
    pub reasons: Vec<Reason>,
}

impl Decision {
    fn deny(bundle_version: u64, reason: Reason) -> Self {
        Self {
            allowed: false,
            policy_ids: Vec::new(),
            bundle_version,
            reasons: vec![reason],
        }
    }
}

#[derive(Default)]
struct Tally {
    permits: Vec<String>,
    forbids: Vec<String>,
    notes: Vec<Reason>,
}

impl Tally {
    /// Counts a principal-only policy as Cedar would have: satisfied, skipped, or failed.
    fn record(&mut self, fixed: &FixedPolicies, outcomes: &[Outcome], slot: usize) {
        let (Some((id, forbid)), Some(outcome)) = (fixed.ids.get(slot), outcomes.get(slot)) else {
            return;
        };
        match outcome {
            Outcome::Satisfied if *forbid => self.forbids.push(id.clone()),
            Outcome::Satisfied => self.permits.push(id.clone()),
            Outcome::Error(message) => self.notes.push(Reason::PolicyError {
                message: message.clone(),
            }),
            Outcome::NotSatisfied => {}
        }
    }

    /// Cedar's combination: any satisfied forbid denies, else any satisfied permit allows,
    /// else deny. Policy ids are sorted so a decision reads the same however it was reached.
    fn conclude(mut self, version: u64) -> Decision {
        self.permits.sort_unstable();
        self.forbids.sort_unstable();
        let (allowed, policy_ids, verdict) = if !self.forbids.is_empty() {
            let reasons = self.forbids.iter().map(|id| Reason::Forbidden {
                policy_id: id.clone(),
            });
            let reasons = reasons.collect::<Vec<_>>();
            (false, self.forbids, reasons)
        } else if !self.permits.is_empty() {
            let reasons = self.permits.iter().map(|id| Reason::Permitted {
                policy_id: id.clone(),
            });
            let reasons = reasons.collect();
            (true, self.permits, reasons)
        } else {
            (false, Vec::new(), vec![Reason::NoPermit])
        };
        let mut reasons = verdict;
        reasons.extend(self.notes);
        Decision {
            allowed,
            policy_ids,
            bundle_version: version,
            reasons,
        }
    }
}

impl Bundle {
    /// Decides `op` for `principal` with this bundle, reporting `version` in the decision.
    pub fn decide(&self, principal: &Principal, op: &Operation, version: u64) -> Decision {
        let kind = op.kind();
        if !principal.is_device() && kind != ActionKind::HttpRequest {
            return Decision::deny(version, Reason::PrincipalType);
        }
        let resolved = match principal.resolve(self) {
            Ok(r) => r,
            Err(e) => {
                let message = e.to_string();
                return Decision::deny(version, Reason::InvalidPrincipal { message });
            }
        };
        let mut tally = Tally::default();
        let mut candidates = Vec::new();
        match op {
            Operation::Publish(name) => self.publish_index.for_name(name, &mut candidates),
            Operation::Subscribe(filter) => {
                self.subscribe_index.for_filter(filter, &mut candidates)
            }
            Operation::Connect { .. } | Operation::Http { .. } => {}
        }
        // Policies whose outcome is fixed for this principal were decided when its entities
        // were built: take those outcomes, and keep for Cedar only what depends on the request.
        let fixed = &self.fixed[kind as usize];
        let outcomes = &resolved.outcomes[kind as usize];
        for slot in &fixed.unannotated {
            tally.record(fixed, outcomes, *slot);
        }
        let mut dynamic = Vec::new();
        for index in candidates {
            let Some(rule) = self.rules.get(index) else {
                continue;
            };
            let bound = resolved.bound(index, || rule.template.bind(principal));
            if Self::rule_applies(rule, bound.as_deref().map_err(|v| *v), op, &mut tally) {
                match rule.fixed_slot[kind as usize] {
                    Some(slot) => tally.record(fixed, outcomes, slot),
                    None => dynamic.push(rule),
                }
            }
        }
        // Ask Cedar once, if anything is left: the action's request-dependent unannotated
        // policies alone, with one rule's precombined set, or (rarely, when several rules
        // apply) with a set assembled for this request.
        let assembled;
        let set = match dynamic.as_slice() {
            [] => self.unannotated(kind),
            [rule] => rule.with_unannotated[kind as usize]
                .as_ref()
                .or(Some(&rule.set)),
            several => {
                let mut set = self.unannotated(kind).cloned().unwrap_or_default();
                for rule in several {
                    for p in rule.set.policies() {
                        // Ids are unique within a bundle, so adding cannot clash.
                        let _ = set.add(p.clone());
                    }
                }
                assembled = set;
                Some(&assembled)
            }
        };
        if let Some(set) = set.filter(|s| !s.is_empty()) {
            let Some(request) = self.request(&resolved.uid, principal, op) else {
                let message = "request context".to_owned();
                return Decision::deny(version, Reason::InvalidPrincipal { message });
            };
            self.evaluate(set, &request, &resolved.entities, &mut tally);
        }
        let decision = tally.conclude(version);
        if !decision.allowed {
            tracing::debug!(operation = %op, client_id = principal.client_id(), reasons = ?decision.reasons, "policy denied");
        }
        decision
    }

    /// Checks `rule`, bound to the principal, against the topic or filter of `op`. A rule that
    /// cannot bind is noted; it applies only when it is a forbid.
    fn rule_applies(
        rule: &TopicRule,
        bound: Result<&TopicFilter, Variable>,
        op: &Operation,
        tally: &mut Tally,
    ) -> bool {
        match bound {
            Ok(bound) => match op {
                Operation::Publish(name) => matches(bound, name),
                Operation::Subscribe(f) if rule.forbid => overlaps(bound, f),
                Operation::Subscribe(f) => includes(bound, f),
                Operation::Connect { .. } | Operation::Http { .. } => false,
            },
            Err(variable) => {
                tally.notes.push(Reason::Unbound {
                    policy_id: rule.policy_id.clone(),
                    variable,
                });
                rule.forbid
            }
        }
    }

    fn request(&self, principal: &EntityUid, who: &Principal, op: &Operation) -> Option<Request> {
        let names = self.names();
        let s = |v: &str| RestrictedExpression::new_string(v.to_owned());
        let client = || ("client_id".to_owned(), s(who.client_id()));
        let (resource_type, resource_id, pairs) = match op {
            Operation::Connect { listener } => (&names.listener, listener.as_str(), vec![client()]),
            Operation::Http { method, path } => (
                &names.route,
                path.as_str(),
                vec![
                    ("method".to_owned(), s(method)),
                    ("path".to_owned(), s(path)),
                ],
            ),
            Operation::Publish(t) => (
                &names.topic,
                t.as_str(),
                vec![client(), ("topic".to_owned(), s(t.as_str()))],
            ),
            Operation::Subscribe(f) => {
                let mut pairs = vec![client(), ("filter".to_owned(), s(f.filter()))];
                if let Some(share) = f.share_name() {
                    pairs.push(("share_name".to_owned(), s(share)));
                }
                (&names.topic, f.filter(), pairs)
            }
        };
        let resource =
            EntityUid::from_type_name_and_id(resource_type.clone(), EntityId::new(resource_id));
        let context = Context::from_pairs(pairs).ok()?;
        let action = names.action(op.kind()).clone();
        Request::new(principal.clone(), action, resource, context, None).ok()
    }

    fn evaluate(
        &self,
        set: &PolicySet,
        request: &Request,
        entities: &cedar_policy::Entities,
        tally: &mut Tally,
    ) {
        let response = self.authorizer.is_authorized(request, set, entities);
        let reasons = response.diagnostics().reason().map(ToString::to_string);
        match response.decision() {
            cedar_policy::Decision::Allow => tally.permits.extend(reasons),
            // A deny with reasons means satisfied forbids; without, nothing applied.
            cedar_policy::Decision::Deny => tally.forbids.extend(reasons),
        }
        for e in response.diagnostics().errors() {
            tally.notes.push(Reason::PolicyError {
                message: e.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests;
