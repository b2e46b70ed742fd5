#![doc = "smtrust policy (README pending)"]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod mqtt;
