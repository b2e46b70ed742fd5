#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bundle;
mod decision;
mod engine;
mod error;
mod fixed;
mod history;
pub mod mqtt;
mod principal;
mod rule;
mod testfile;

#[doc(hidden)]
pub mod fuzzing;

// The public interface is:
pub use bundle::{Bundle, BundleSources, ID_ANNOTATION, TOPIC_ANNOTATION, default};
pub use decision::{Decision, Operation, Reason};
pub use engine::{DecisionChange, Engine, VersionInfo};
pub use error::Error;
pub use history::{BundleDiff, PolicyChange};
pub use mqtt::{TopicFilter, TopicName};
pub use principal::{AdminRole, AttestationStatus, DeviceAttributes, Principal};
pub use rule::{RuleError, Variable};
pub use testfile::{CaseOutcome, TestCaseProblem, TestReport, run_tests};
