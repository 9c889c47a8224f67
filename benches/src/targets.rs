//! The targets of docs/BENCHMARKS.md, checked against one run's figures: the suite prints
//! this table after its own, so that whether a target is met is read off the run itself.

use std::fmt::Write as _;

use crate::report::{Figure, Report};

/// One target: what it asks, whether the run met it (`None`: a figure it needs was not
/// measured in this run), and the figures behind the verdict.
struct Row {
    target: String,
    met: Option<bool>,
    measured: String,
}

/// The figures of one run, looked up by workload, case, backend, variant and metric (of
/// several sizes, the largest).
struct Figures<'a>(&'a [Figure]);

impl Figures<'_> {
    fn get(&self, w: &str, case: &str, b: &str, variant: &str, metric: &str) -> Option<f64> {
        self.0
            .iter()
            .filter(|f| {
                f.workload == w
                    && f.case == case
                    && f.backend == b
                    && f.variant == variant
                    && f.metric == metric
            })
            .max_by_key(|f| f.size)
            .map(|f| f.value)
    }

    fn has(&self, b: &str) -> bool {
        self.0.iter().any(|f| f.backend == b)
    }
}

/// `a / b`, when both were measured and `b` is not zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// All of `checks` hold; `None` when one could not be checked.
fn all(checks: &[Option<bool>]) -> Option<bool> {
    checks.iter().try_fold(true, |acc, c| c.map(|c| acc && c))
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.0}"))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.3} ms"))
}

fn times(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}x"))
}

/// The targets table of `report`: one line per target and backend measured.
pub fn table(report: &Report) -> String {
    let f = Figures(report.figures());
    let mut rows: Vec<Row> = Vec::new();
    for b in ["sqlite", "postgres"].into_iter().filter(|b| f.has(b)) {
        let pg = b == "postgres";
        // W1: the two shapes.
        for case in ["agents_100", "one_agent"] {
            let get = |v| f.get("W1", case, b, v, "rows_per_s");
            let (o, n, c, r) = (get("optimized"), get("naive"), get("ceiling"), get("raw"));
            let naive_x = if pg { 5.0 } else { 20.0 };
            rows.push(Row {
                target: format!("W1 {b} {case}: >= 1.0x ceiling, >= {naive_x}x naive, >= 0.9x raw"),
                met: all(&[
                    ratio(o, c).map(|x| x >= 1.0),
                    ratio(o, n).map(|x| x >= naive_x),
                    ratio(o, r).map(|x| x >= 0.9),
                ]),
                measured: format!(
                    "{} rows/s; {} ceiling ({}); {} naive ({}); {} raw ({})",
                    num(o),
                    times(ratio(o, c)),
                    num(c),
                    times(ratio(o, n)),
                    num(n),
                    times(ratio(o, r)),
                    num(r)
                ),
            });
        }
        // W2: passages with embeddings.
        let get = |v| f.get("W2", "all", b, v, "rows_per_s");
        let (o, n, c) = (get("optimized"), get("naive"), get("ceiling"));
        let mut checks = vec![ratio(o, n).map(|x| x >= 3.0)];
        if pg {
            checks.push(ratio(o, c).map(|x| x >= 1.0));
        }
        rows.push(Row {
            target: format!(
                "W2 {b}: >= 3x naive{}",
                if pg { ", >= 1.0x ceiling" } else { "" }
            ),
            met: all(&checks),
            measured: format!(
                "{} rows/s; {} naive ({}); {} ceiling ({})",
                num(o),
                times(ratio(o, n)),
                num(n),
                times(ratio(o, c)),
                num(c)
            ),
        });
        // W2 spread over two connections, beside the single-connection ceiling.
        let spread = f.get("W2", "spread", b, "optimized", "rows_per_s");
        if pg && spread.is_some() {
            let cores = f
                .get("W2", "spread", b, "optimized", "cores")
                .unwrap_or(0.0);
            rows.push(Row {
                target: format!("W2 {b} over 2 connections: >= 1.0x ceiling"),
                met: all(&[ratio(spread, c).map(|x| x >= 1.0)]),
                measured: format!(
                    "{} rows/s, {cores} client cores; {} ceiling ({}); {} one connection ({})",
                    num(spread),
                    times(ratio(spread, c)),
                    num(c),
                    times(ratio(spread, o)),
                    num(o)
                ),
            });
        }
        // W3: upserts (the run fails unless every row came back updated).
        let get = |v| f.get("W3", "all", b, v, "rows_per_s");
        let (o, n) = (get("optimized"), get("naive"));
        rows.push(Row {
            target: format!("W3 {b}: every row updated, >= 5x naive"),
            met: all(&[ratio(o, n).map(|x| x >= 5.0)]),
            measured: format!(
                "{} rows/s; {} naive ({}); every row updated (checked by the run)",
                num(o),
                times(ratio(o, n)),
                num(n)
            ),
        });
        // W4: each call's p50.
        for case in [
            "get_all_100",
            "pages_100",
            "size",
            "query_date_1h",
            "query_text_word",
            "get_id",
        ] {
            let get = |v| f.get("W4", case, b, v, "p50_ms");
            let (o, n, r) = (get("optimized"), get("naive"), get("raw"));
            let mut checks = vec![o.map(|o| o < 2.0), ratio(o, r).map(|x| x <= 1.2)];
            if case != "get_id" {
                checks.push(ratio(n, o).map(|x| x >= 20.0));
            }
            rows.push(Row {
                target: format!(
                    "W4 {b} {case}: p50 < 2 ms{}, <= 1.2x raw's time",
                    if case == "get_id" {
                        ""
                    } else {
                        ", >= 20x naive"
                    }
                ),
                met: all(&checks),
                measured: format!(
                    "p50 {}; naive {} ({} faster); raw {} (the library takes {})",
                    ms(o),
                    ms(n),
                    times(ratio(n, o)),
                    ms(r),
                    times(ratio(o, r))
                ),
            });
        }
        // W5: exact within one agent; HNSW over all rows on PostgreSQL.
        let (p50, recall) = (
            f.get("W5", "all", b, "optimized", "p50_ms"),
            f.get("W5", "all", b, "optimized", "recall_at_10"),
        );
        rows.push(Row {
            target: format!("W5 {b} one agent: recall 1.0, p50 < 5 ms"),
            met: all(&[p50.map(|p| p < 5.0), recall.map(|r| r >= 1.0)]),
            measured: format!(
                "p50 {}, recall@10 {}{}",
                ms(p50),
                recall.map_or_else(|| "not measured".to_owned(), |r| format!("{r:.3}")),
                f.get("W5", "all", b, "raw", "p50_ms")
                    .map_or_else(String::new, |r| format!(
                        "; raw on MemGPT's padded column p50 {}",
                        ms(Some(r))
                    ))
            ),
        });
        if pg {
            let (p50, recall) = (
                f.get("W5", "all", b, "global", "p50_ms"),
                f.get("W5", "all", b, "global", "recall_at_10"),
            );
            rows.push(Row {
                target: format!("W5 {b} global HNSW: recall >= 0.95, p50 < 10 ms"),
                met: all(&[p50.map(|p| p < 10.0), recall.map(|r| r >= 0.95)]),
                measured: format!(
                    "p50 {}, recall@10 {}",
                    ms(p50),
                    recall.map_or_else(|| "not measured".to_owned(), |r| format!("{r:.3}"))
                ),
            });
        }
        // W6: 200 threads; on SQLite, reads during a load.
        let get = |v, m| f.get("W6", "mixed", b, v, m);
        let (o, n, errors) = (
            get("optimized", "ops_per_s"),
            get("naive", "ops_per_s"),
            get("optimized", "errors"),
        );
        let mut checks = vec![errors.map(|e| e == 0.0)];
        if pg {
            checks.push(ratio(o, n).map(|x| x >= 10.0));
        }
        rows.push(Row {
            target: format!(
                "W6 {b} 200 threads: 0 errors{}",
                if pg {
                    ", >= 10x connection-per-call"
                } else {
                    ""
                }
            ),
            met: all(&checks),
            measured: format!(
                "{} ops/s, {} errors; {} {} ops/s ({}), {} errors",
                num(o),
                num(errors),
                if pg {
                    "connection per call"
                } else {
                    "MemGPT's settings"
                },
                num(n),
                times(ratio(o, n)),
                num(get("naive", "errors"))
            ),
        });
        if !pg {
            let get = |v| f.get("W6", "reads_during_load", b, v, "ops_per_s");
            let (o, n) = (get("optimized"), get("naive"));
            rows.push(Row {
                target: format!("W6 {b} reads during a load: >= 1.5x single connection"),
                met: all(&[ratio(o, n).map(|x| x >= 1.5)]),
                measured: format!("{} reads/s vs {} ({})", num(o), num(n), times(ratio(o, n))),
            });
        }
        // W7: what a million messages from an iterator make the process allocate (its
        // anonymous RSS), beside the peak RSS that also counts the file pages it mapped.
        let get = |case, metric| f.get("W7", case, b, "optimized", metric);
        let mb =
            |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.1} MB"));
        let anon = get("all", "peak_anon_mb");
        let mut measured = format!(
            "allocated {}; peak RSS {} of which file-backed (memory map, page cache) {}",
            mb(anon),
            mb(get("all", "peak_rss_mb")),
            mb(get("all", "peak_file_mb"))
        );
        if let Some(off) = get("mmap_off", "peak_rss_mb") {
            measured.push_str(&format!(
                "; with the memory map off: peak RSS {off:.1} MB, allocated {}",
                mb(get("mmap_off", "peak_anon_mb"))
            ));
        }
        rows.push(Row {
            target: format!("W7 {b} 1M from an iterator: allocated (anonymous RSS) < 64 MB"),
            met: all(&[anon.map(|r| r < 64.0)]),
            measured,
        });
    }
    for b in ["sqlite", "postgres"] {
        let get = |case, metric| f.get("W6R", case, b, "optimized", metric);
        let (alone, pruning) = (get("mixed_1m", "p99_ms"), get("mixed_1m_pruning", "p99_ms"));
        let errors = get("mixed_1m_pruning", "errors");
        rows.push(Row {
            target: format!("W6R {b} while pruning half of 1,000,000 messages: 0 errors"),
            met: all(&[errors.map(|e| e == 0.0)]),
            measured: format!(
                "p99 {} (alone {}); {} ops/s (alone {}); pruned {} rows/s",
                ms(pruning),
                ms(alone),
                num(get("mixed_1m_pruning", "ops_per_s")),
                num(get("mixed_1m", "ops_per_s")),
                num(get("prune", "rows_per_s"))
            ),
        });
        let get = |v| f.get("W8", "rust_docs", b, v, "recall_at_10");
        let (h, v, t) = (get("hybrid"), get("vector"), get("text"));
        let best = v.zip(t).map(|(v, t)| v.max(t));
        rows.push(Row {
            target: format!("W8 {b} real text: hybrid recall@10 > the better of vector and text"),
            met: all(&[h.zip(best).map(|(h, best)| h > best)]),
            measured: match (h, v, t) {
                (Some(h), Some(v), Some(t)) => {
                    format!("hybrid {h:.3}, vector {v:.3}, text {t:.3}")
                }
                _ => "not measured".to_owned(),
            },
        });
    }
    let mut out = String::from("| target | status | measured (this run) |\n|---|---|---|\n");
    // Only the workloads this run measured (`cargo xtask bench W4` checks W4's targets).
    let ran = |target: &str| {
        f.0.iter().any(|x| {
            let head = format!("{} {}", x.workload, x.backend);
            target.starts_with(&format!("{head} ")) || target.starts_with(&format!("{head}:"))
        })
    };
    for r in rows.into_iter().filter(|r| ran(&r.target)) {
        let status = match r.met {
            Some(true) => "met",
            Some(false) => "missed",
            None => "not measured",
        };
        let _ = writeln!(out, "| {} | {status} | {} |", r.target, r.measured);
    }
    out
}
