//! Output: aligned tables for people, JSON for scripts.

use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Text,
    /// One JSON document (JSON lines for produce and consume).
    Json,
}

/// Columns separated by at least two spaces, each as wide as its widest cell.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[c] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// A key/value block ("NAME  value" lines).
pub fn print_pairs(pairs: &[(&str, String)]) {
    let mut t = Table { rows: Vec::new() };
    for (k, v) in pairs {
        t.row(vec![k.to_string(), v.clone()]);
    }
    t.print();
}

pub fn print_json<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string(value).expect("CLI output serializes")
    );
}

/// `[1,2,3]` for replica lists.
pub fn ids(v: &[i32]) -> String {
    let inner: Vec<String> = v.iter().map(|i| i.to_string()).collect();
    format!("[{}]", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["NAME", "PARTITIONS"]);
        t.row(vec!["a-long-name".into(), "3".into()]);
        t.row(vec!["b".into(), "12".into()]);
        assert_eq!(
            t.render(),
            "NAME         PARTITIONS\na-long-name  3\nb            12\n"
        );
    }
}
