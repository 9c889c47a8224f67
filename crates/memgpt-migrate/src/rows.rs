//! Rows of one column that this crate's statements (and a few of the PostgreSQL backend's
//! own) return: diesel's `QueryableByName` derive without a table is backend-generic.

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;

/// `SELECT count(*) AS n …`.
#[derive(Debug, QueryableByName)]
pub struct Count {
    /// The count.
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// `SELECT … AS name`.
#[derive(Debug, QueryableByName)]
pub struct Name {
    /// The value.
    #[diesel(sql_type = Text)]
    pub name: String,
}
