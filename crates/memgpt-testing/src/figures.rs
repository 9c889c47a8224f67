//! The names the metrics tests compare figures by.

/// `name{label=value,…}`, the labels sorted: one figure's name whatever order its labels
/// were given in.
pub fn labelled(key: &metrics::Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}
