//! The tables as the connector reads them (embeddings as `real[]`, whatever the column's
//! type), each declared once: the `table!` of the table and of its COPY staging table
//! (`ord`, then the same columns) come from one declaration, and the row structs of
//! `record.rs` derive against them (`check_for_backend(Pg)`), so a column name or type
//! that does not match fails to compile.

/// Declares `table!`s of the same columns: the tables, and the staging table whose key is
/// the record's index in the batch (`ord`).
macro_rules! tables {
    ([$($table:ident),+], $staging:ident $columns:tt) => {
        $(table!($table, id, $columns);)+
        table!($staging, ord, $columns);
    };
}

/// One `table!`: keyed by `id`, or a staging table keyed by `ord` before the columns, in the
/// session's own temporary schema (`pg_temp.`: never a table of that name elsewhere on the
/// `search_path`).
macro_rules! table {
    ($table:ident, id, { $($col:ident -> $ty:ty,)+ }) => {
        diesel::table! {
            #[allow(missing_docs)]
            $table (id) {
                $($col -> $ty,)+
            }
        }
    };
    ($table:ident, ord, { $($col:ident -> $ty:ty,)+ }) => {
        diesel::table! {
            #[allow(missing_docs)]
            pg_temp.$table (ord) {
                ord -> diesel::sql_types::Int8,
                $($col -> $ty,)+
            }
        }
    };
}

tables!([memgpt_recall_memory_agent], memgpt_staging_messages {
    id -> Uuid,
    user_id -> Uuid,
    agent_id -> Uuid,
    role -> Text,
    text -> Nullable<Text>,
    model -> Nullable<Text>,
    name -> Nullable<Text>,
    tool_calls -> Nullable<Json>,
    tool_call_id -> Nullable<Text>,
    embedding -> Nullable<Array<Float4>>,
    embedding_dim -> Nullable<Int8>,
    embedding_model -> Nullable<Text>,
    created_at -> Nullable<Timestamptz>,
});

tables!([memgpt_archival_memory_agent, memgpt_passages], memgpt_staging_passages {
    id -> Uuid,
    user_id -> Uuid,
    text -> Nullable<Text>,
    doc_id -> Nullable<Uuid>,
    agent_id -> Nullable<Uuid>,
    data_source -> Nullable<Text>,
    embedding -> Nullable<Array<Float4>>,
    embedding_dim -> Nullable<Int8>,
    embedding_model -> Nullable<Text>,
    metadata_ -> Nullable<Json>,
    created_at -> Nullable<Timestamptz>,
});

tables!([memgpt_documents], memgpt_staging_documents {
    id -> Uuid,
    user_id -> Uuid,
    text -> Nullable<Text>,
    data_source -> Nullable<Text>,
    metadata_ -> Nullable<Json>,
    created_at -> Nullable<Timestamptz>,
});
