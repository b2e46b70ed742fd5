//! The PostgreSQL cluster that scripts/peers/start-postgres.sh starts.

use std::env;

use super::{NotFound, Peer};

/// A database named by `SMTRUST_TEST_POSTGRES_URL` (`postgres://user@127.0.0.1:55432/smtrust_test`).
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

/// A PostgreSQL connection URL (trust auth on loopback: it carries no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresUrl(pub String);

impl Peer for Postgres {
    type Found = PostgresUrl;
    const NAME: &'static str = "PostgreSQL test cluster";
    const SETUP: &'static str = "scripts/peers/start-postgres.sh";

    fn locate(&self) -> Result<PostgresUrl, NotFound> {
        let mut why = NotFound::default();
        match env::var("SMTRUST_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(PostgresUrl(url))
            }
            Some(url) => {
                why.tried(format!(
                    "$SMTRUST_TEST_POSTGRES_URL={url} is not a postgres:// URL"
                ));
                Err(why)
            }
            None => {
                why.tried("$SMTRUST_TEST_POSTGRES_URL unset");
                Err(why)
            }
        }
    }
}
