//! Rows of one column that the backends' statements (and this crate's) return, shared by
//! both backends: diesel's `QueryableByName` derive without a table is backend-generic.

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

/// `SELECT DISTINCT data_source …`.
#[derive(Debug, QueryableByName)]
pub struct DataSource {
    /// The data source.
    #[diesel(sql_type = Text)]
    pub data_source: String,
}
