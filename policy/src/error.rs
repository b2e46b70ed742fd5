//! The crate's one error type.

use crate::mqtt::TopicError;
use crate::rule::RuleError;

/// Everything this crate can refuse. A policy *denial* is not an error: it is a
/// [`Decision`](crate::Decision) with `allowed == false`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- the operator's bundle ---
    /// The Cedar schema does not parse or is inconsistent.
    #[error("schema: {0}")]
    Schema(#[source] Box<cedar_policy::CedarSchemaError>),
    /// The schema lacks an entity type or action the engine builds requests with.
    #[error("schema lacks {name}, which the engine needs")]
    SchemaMissing {
        /// The entity type or action, in Cedar syntax.
        name: String,
    },
    /// A policy does not parse.
    #[error("policies: {0}")]
    PolicyParse(#[source] Box<cedar_policy::ParseErrors>),
    /// The policies cannot form a set (for example, two with the same `@id`).
    #[error("policy set: {0}")]
    PolicySet(#[source] Box<cedar_policy::PolicySetError>),
    /// The strict Cedar validator found errors; each entry is one validator message.
    #[error("{} policy validation error(s), first: {}", .errors.len(), .errors.first().map_or("", String::as_str))]
    Validation {
        /// The validator's messages, one per error.
        errors: Vec<String>,
    },
    /// Templates (`?principal` slots) are not supported in bundles.
    #[error("policy {policy_id}: templates are not supported in a bundle")]
    Template {
        /// The template's id.
        policy_id: String,
    },
    /// A `@topic` annotation is malformed or on the wrong kind of policy.
    #[error("policy {policy_id}: @topic: {source}")]
    TopicRule {
        /// The policy carrying the annotation.
        policy_id: String,
        /// What is wrong with it.
        source: RuleError,
    },
    /// The entity data does not parse or does not conform to the schema.
    #[error("entities: {0}")]
    Entities(#[source] Box<cedar_policy::entities_errors::EntitiesError>),

    // --- the caller's input ---
    /// A topic name or filter is malformed.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// A principal's attributes cannot become a Cedar entity.
    #[error("principal: {0}")]
    PrincipalAttribute(#[source] Box<cedar_policy::EntityAttrEvaluationError>),
    /// A request context cannot be built.
    #[error("request context: {0}")]
    Context(#[source] Box<cedar_policy::ContextCreationError>),
    /// A policy test file is not valid TOML or does not follow the format.
    #[error("test file: {0}")]
    TestFile(#[source] Box<toml::de::Error>),
    /// A test case is malformed.
    #[error("test {name:?}: {problem}")]
    TestCase {
        /// The case's name.
        name: String,
        /// What is wrong.
        problem: crate::testfile::TestCaseProblem,
    },

    // --- version history ---
    /// No bundle with this version was ever activated.
    #[error("no bundle version {version}")]
    UnknownVersion {
        /// The version asked for.
        version: u64,
    },
    /// Rollback asked for with no earlier version in the history.
    #[error("no version before {version} to roll back to")]
    NoEarlierVersion {
        /// The active version.
        version: u64,
    },
}

impl From<cedar_policy::CedarSchemaError> for Error {
    fn from(e: cedar_policy::CedarSchemaError) -> Self {
        Self::Schema(Box::new(e))
    }
}
impl From<cedar_policy::ParseErrors> for Error {
    fn from(e: cedar_policy::ParseErrors) -> Self {
        Self::PolicyParse(Box::new(e))
    }
}
impl From<cedar_policy::PolicySetError> for Error {
    fn from(e: cedar_policy::PolicySetError) -> Self {
        Self::PolicySet(Box::new(e))
    }
}
impl From<cedar_policy::entities_errors::EntitiesError> for Error {
    fn from(e: cedar_policy::entities_errors::EntitiesError) -> Self {
        Self::Entities(Box::new(e))
    }
}
