//! The tables bulk loads COPY into (`copy.rs`, `direct.rs`): each stored table by its
//! record's columns, and each COPY staging table — the record's index in the batch
//! (`ord`), then the same columns — in the session's own temporary schema (`pg_temp.`:
//! never a table of that name elsewhere on the `search_path`). diesel's COPY names its
//! target by these declarations; the SQL types are diesel's only (a binary COPY sends
//! each field in the column's own format, `binary.rs` says which).

/// One staging `table!`, keyed by `ord`, and the stored tables of the same columns.
macro_rules! staging {
    ($table:ident, [$($stored:ident),+], $names:ident $columns:tt) => {
        staging!(@staging $table, $names $columns);
        $(staging!(@stored $stored $columns);)+
    };
    (@staging $table:ident, $names:ident { $($col:ident -> $ty:ty,)+ }) => {
        /// The staged columns after `ord`, in COPY's field order.
        #[cfg(test)]
        pub(crate) const $names: &[&str] = &[$(stringify!($col)),+];

        diesel::table! {
            #[allow(missing_docs)]
            pg_temp.$table (ord) {
                ord -> diesel::sql_types::Int8,
                $($col -> $ty,)+
            }
        }
    };
    (@stored $table:ident { $($col:ident -> $ty:ty,)+ }) => {
        diesel::table! {
            #[allow(missing_docs)]
            $table (id) {
                $($col -> $ty,)+
            }
        }
    };
}

staging!(memgpt_staging_messages, [memgpt_recall_memory_agent], MESSAGE_FIELDS {
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

staging!(memgpt_staging_passages, [memgpt_archival_memory_agent, memgpt_passages], PASSAGE_FIELDS {
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

staging!(memgpt_staging_documents, [memgpt_documents], DOCUMENT_FIELDS {
    id -> Uuid,
    user_id -> Uuid,
    text -> Nullable<Text>,
    data_source -> Nullable<Text>,
    metadata_ -> Nullable<Json>,
    created_at -> Nullable<Timestamptz>,
});

#[cfg(test)]
mod tests {
    use memgpt_core::{Document, Message, Passage, Record};

    /// COPY writes each record's values in its `COLUMNS` order into the staging table's
    /// fields, which these declarations name in order.
    #[test]
    fn the_staging_fields_are_the_record_columns_in_order() {
        assert_eq!(super::MESSAGE_FIELDS, Message::COLUMNS);
        assert_eq!(super::PASSAGE_FIELDS, Passage::COLUMNS);
        assert_eq!(super::DOCUMENT_FIELDS, Document::COLUMNS);
    }
}
