//! The tables as SQLite stores them (MemGPT's encodings: uuids and timestamps as text,
//! embeddings as blobs), each declared once; the row structs of `record.rs` derive against
//! them (`check_for_backend(Sqlite)`), so a column name or type that does not match fails
//! to compile.

diesel::table! {
    #[allow(missing_docs)]
    memgpt_recall_memory_agent (id) {
        id -> Text,
        user_id -> Text,
        agent_id -> Text,
        role -> Text,
        text -> Nullable<Text>,
        model -> Nullable<Text>,
        name -> Nullable<Text>,
        tool_calls -> Nullable<Text>,
        tool_call_id -> Nullable<Text>,
        embedding -> Nullable<Binary>,
        embedding_dim -> Nullable<BigInt>,
        embedding_model -> Nullable<Text>,
        created_at -> Nullable<Text>,
    }
}

/// The columns of `memgpt_archival_memory_agent` and `memgpt_passages`.
macro_rules! passages {
    ($($table:ident),+) => {
        $(
            diesel::table! {
                #[allow(missing_docs)]
                $table (id) {
                    id -> Text,
                    user_id -> Text,
                    text -> Nullable<Text>,
                    doc_id -> Nullable<Text>,
                    agent_id -> Nullable<Text>,
                    data_source -> Nullable<Text>,
                    embedding -> Nullable<Binary>,
                    embedding_dim -> Nullable<BigInt>,
                    embedding_model -> Nullable<Text>,
                    metadata_ -> Nullable<Text>,
                    created_at -> Nullable<Text>,
                }
            }
        )+
    };
}

passages!(memgpt_archival_memory_agent, memgpt_passages);

diesel::table! {
    #[allow(missing_docs)]
    memgpt_documents (id) {
        id -> Text,
        user_id -> Text,
        text -> Nullable<Text>,
        data_source -> Nullable<Text>,
        metadata_ -> Nullable<Text>,
        created_at -> Nullable<Text>,
    }
}
