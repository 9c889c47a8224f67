//! The figures of one run: collected as they are measured, written as JSON
//! (`{"results": [...]}`) and printed as one table with the ratios between variants.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One measured figure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    /// `W1` … `W8`, `W6R`, `S1`.
    pub workload: &'static str,
    /// The call or shape within the workload (`agents_100`, `get_all_100`, `all`, …).
    pub case: String,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// `optimized`, `naive`, `ceiling`, `raw` or `global`; W8's `vector`, `text`, `hybrid`.
    pub variant: &'static str,
    /// Records in the workload (rows loaded, rows in the table read, rounds run).
    pub size: u64,
    /// `rows_per_s`, `p50_ms`, `p99_ms`, `ops_per_s`, `errors`, `peak_rss_mb` (`peak_anon_mb`, `peak_file_mb`),
    /// `recall_at_10`, `mrr_at_10`.
    pub metric: &'static str,
    /// The figure.
    pub value: f64,
}

/// Every figure of a run, in the order measured.
#[derive(Debug, Default)]
pub struct Report {
    figures: Vec<Figure>,
}

const VARIANTS: [&str; 8] = [
    "optimized",
    "naive",
    "ceiling",
    "raw",
    "global",
    "vector",
    "text",
    "hybrid",
];

impl Report {
    /// Records a figure and prints it at once (a long run shows its progress).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        workload: &'static str,
        case: &str,
        backend: &'static str,
        variant: &'static str,
        size: u64,
        metric: &'static str,
        value: f64,
    ) {
        eprintln!("  {workload} {case} {backend} {variant} size {size}: {metric} = {value:.3}");
        self.figures.push(Figure {
            workload,
            case: case.to_owned(),
            backend,
            variant,
            size,
            metric,
            value,
        });
    }

    /// The figures so far.
    pub fn figures(&self) -> &[Figure] {
        &self.figures
    }

    /// `{"results": [...]}`.
    pub fn json(&self) -> String {
        serde_json::json!({ "results": self.figures }).to_string()
    }

    /// One line per (workload, case, backend, size, metric): the value of each variant and
    /// the ratios optimized/naive, optimized/ceiling, optimized/raw, each written as how
    /// many times better optimized is (rates divided, latencies inverted).
    pub fn table(&self) -> String {
        type Key = (&'static str, String, &'static str, u64, &'static str);
        let mut rows: BTreeMap<(usize, Key), BTreeMap<&'static str, f64>> = BTreeMap::new();
        let mut order: BTreeMap<Key, usize> = BTreeMap::new();
        for f in &self.figures {
            let key: Key = (f.workload, f.case.clone(), f.backend, f.size, f.metric);
            let n = order.len();
            let at = *order.entry(key.clone()).or_insert(n);
            rows.entry((at, key))
                .or_default()
                .insert(f.variant, f.value);
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| workload | case | backend | size | metric | optimized | naive | ceiling | raw | global | vector | text | hybrid | opt/naive | opt/ceiling | opt/raw |"
        );
        let _ = writeln!(
            out,
            "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for ((_, (w, case, backend, size, metric)), values) in rows {
            let cell = |v: Option<&f64>| v.map_or("—".to_owned(), |v| number(*v));
            let lower_is_better =
                metric.ends_with("_ms") || metric.starts_with("peak_") || metric == "errors";
            let ratio = |other: &str| match (values.get("optimized"), values.get(other)) {
                (Some(&o), Some(&x)) if o > 0.0 && x > 0.0 => {
                    format!("{:.2}x", if lower_is_better { x / o } else { o / x })
                }
                _ => "—".to_owned(),
            };
            let _ = write!(out, "| {w} | {case} | {backend} | {size} | {metric} |");
            for v in VARIANTS {
                let _ = write!(out, " {} |", cell(values.get(v)));
            }
            let _ = writeln!(
                out,
                " {} | {} | {} |",
                ratio("naive"),
                ratio("ceiling"),
                ratio("raw")
            );
        }
        out
    }
}

/// Three significant digits, at least.
fn number(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
