//! Policy test files: requests with expected decisions, kept beside the policies and run by
//! `smtrust policy test` and by `cargo test`.
//!
//! ```toml
//! [principals.meter]                 # named once, used by many tests
//! type = "device"                    # or "admin" (with id and role)
//! id = "ctw-0000000001"
//! product = "meter"
//! factory = "sz-1"
//! firmware = "2.4.1"
//! attestation = "verified"           # verified | unverified | failed | expired
//! groups = ["line-3"]                # optional
//! client_id = "ctw-0000000001"       # optional, defaults to the device id
//!
//! [[test]]
//! name = "meter publishes its telemetry"
//! principal = "meter"
//! publish = "devices/ctw-0000000001/up/telemetry"   # exactly one of: connect = "<listener>",
//! expect = "allow"                                  # http = "GET /path", publish, subscribe
//! policies = ["device-publish-own-up"]              # optional: the deciding policy ids
//! ```

use crate::Error;
use crate::bundle::Bundle;
use crate::decision::{Decision, Operation};
use crate::mqtt::{TopicError, TopicFilter, TopicName};
use crate::principal::{AdminRole, AttestationStatus, DeviceAttributes, Principal};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    principals: BTreeMap<String, RawPrincipal>,
    #[serde(default, rename = "test")]
    tests: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RawPrincipal {
    Device {
        id: String,
        product: String,
        factory: String,
        firmware: String,
        attestation: AttestationStatus,
        #[serde(default)]
        groups: Vec<String>,
        client_id: Option<String>,
    },
    Admin {
        id: String,
        role: AdminRole,
    },
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Expect {
    Allow,
    Deny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    principal: String,
    connect: Option<String>,
    http: Option<String>,
    publish: Option<String>,
    subscribe: Option<String>,
    expect: Expect,
    policies: Option<Vec<String>>,
}

/// What is wrong with one test case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TestCaseProblem {
    /// `principal` names no entry of `[principals]`.
    #[error("unknown principal {0:?}")]
    UnknownPrincipal(String),
    /// Not exactly one of `connect`, `http`, `publish`, `subscribe`.
    #[error("{0} operations given; exactly one of connect, http, publish, subscribe is needed")]
    OperationCount(usize),
    /// `http` is not `METHOD /path`.
    #[error("http must be \"METHOD /path\"")]
    Http,
    /// The topic or filter is invalid.
    #[error(transparent)]
    Topic(#[from] TopicError),
}

/// The result of one test case.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CaseOutcome {
    /// The case's name.
    pub name: String,
    /// What was asked.
    pub operation: Operation,
    /// Expected to be allowed.
    pub expect_allowed: bool,
    /// Expected deciding policy ids, when the case lists them.
    pub expect_policies: Option<Vec<String>>,
    /// What the bundle decided.
    pub decision: Decision,
}

impl CaseOutcome {
    /// The decision is as expected (and so are the deciding policies, when listed).
    pub fn passed(&self) -> bool {
        let mut got = self.decision.policy_ids.clone();
        got.sort();
        let policies_ok = self.expect_policies.as_ref().is_none_or(|want| {
            let mut want = want.clone();
            want.sort();
            want == got
        });
        self.decision.allowed == self.expect_allowed && policies_ok
    }
}

/// The results of a test file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestReport {
    /// One per `[[test]]`, in file order.
    pub cases: Vec<CaseOutcome>,
}

impl TestReport {
    /// The cases that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CaseOutcome> {
        self.cases.iter().filter(|c| !c.passed())
    }

    /// True when every case passed.
    pub fn all_passed(&self) -> bool {
        self.failures().next().is_none()
    }
}

impl fmt::Display for TestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.cases {
            let verdict = |allowed| if allowed { "allow" } else { "deny" };
            if c.passed() {
                writeln!(f, "ok      {}", c.name)?;
            } else {
                writeln!(
                    f,
                    "FAILED  {}: {} expected {} {:?}, got {} {:?} ({:?})",
                    c.name,
                    c.operation,
                    verdict(c.expect_allowed),
                    c.expect_policies.as_deref().unwrap_or_default(),
                    verdict(c.decision.allowed),
                    c.decision.policy_ids,
                    c.decision.reasons
                )?;
            }
        }
        let failed = self.failures().count();
        writeln!(f, "{} passed, {failed} failed", self.cases.len() - failed)
    }
}

fn principal(raw: &RawPrincipal) -> Principal {
    match raw {
        RawPrincipal::Device {
            id,
            product,
            factory,
            firmware,
            attestation,
            groups,
            client_id,
        } => Principal::device(
            DeviceAttributes {
                id: id.clone(),
                product: product.clone(),
                factory: factory.clone(),
                firmware: firmware.clone(),
                attestation: *attestation,
                groups: groups.clone(),
            },
            client_id.clone().unwrap_or_else(|| id.clone()),
        ),
        RawPrincipal::Admin { id, role } => Principal::admin(id.clone(), *role),
    }
}

fn operation(case: &RawCase) -> Result<Operation, TestCaseProblem> {
    let given = [&case.connect, &case.http, &case.publish, &case.subscribe];
    let count = given.iter().filter(|o| o.is_some()).count();
    if count != 1 {
        return Err(TestCaseProblem::OperationCount(count));
    }
    if let Some(listener) = &case.connect {
        return Ok(Operation::Connect {
            listener: listener.clone(),
        });
    }
    if let Some(http) = &case.http {
        let (method, path) = http.split_once(' ').ok_or(TestCaseProblem::Http)?;
        return Ok(Operation::Http {
            method: method.to_owned(),
            path: path.trim().to_owned(),
        });
    }
    if let Some(topic) = &case.publish {
        return Ok(Operation::Publish(TopicName::parse(topic)?));
    }
    let filter = case.subscribe.as_deref().unwrap_or_default();
    Ok(Operation::Subscribe(TopicFilter::parse(filter)?))
}

/// Runs the test file `text` (TOML, format above) against `bundle`. A malformed file is an
/// error; failing cases are reported in the [`TestReport`].
pub fn run_tests(bundle: &Bundle, text: &str) -> Result<TestReport, Error> {
    let raw: RawFile = toml::from_str(text).map_err(|e| Error::TestFile(Box::new(e)))?;
    let principals: BTreeMap<&str, Principal> = raw
        .principals
        .iter()
        .map(|(name, p)| (name.as_str(), principal(p)))
        .collect();
    let mut cases = Vec::with_capacity(raw.tests.len());
    for case in &raw.tests {
        let fail = |problem| Error::TestCase {
            name: case.name.clone(),
            problem,
        };
        let who = principals
            .get(case.principal.as_str())
            .ok_or_else(|| fail(TestCaseProblem::UnknownPrincipal(case.principal.clone())))?;
        let op = operation(case).map_err(fail)?;
        let decision = bundle.decide(who, &op, 0);
        cases.push(CaseOutcome {
            name: case.name.clone(),
            operation: op,
            expect_allowed: case.expect == Expect::Allow,
            expect_policies: case.policies.clone(),
            decision,
        });
    }
    Ok(TestReport { cases })
}
