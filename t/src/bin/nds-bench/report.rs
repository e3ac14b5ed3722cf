//! The report: tables in Markdown and the figures the targets are checked against.

pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn show(&self) -> String {
        format!("{:.0} ({:.0}-{:.0})", self.median, self.min, self.max)
    }
}

impl Stat {
    pub fn of(mut v: Vec<f64>) -> Stat {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = v.len();
        Stat {
            median: v[n / 2],
            min: v[0],
            max: v[n - 1],
        }
    }
}

#[derive(Default)]
pub struct Report {
    pub text: String,
    /// Figures the targets summary is made of, by key.
    pub figures: std::collections::BTreeMap<&'static str, f64>,
}

impl Report {
    pub fn figure(&mut self, key: &'static str, value: f64) {
        self.figures.insert(key, value);
    }
    pub fn line(&mut self, s: String) {
        self.text += &format!("\n### {s}\n\n");
    }
    pub fn table_head(&mut self, cols: &[&str]) {
        self.text += &format!("| {} |\n|{}\n", cols.join(" | "), "---|".repeat(cols.len()));
    }
    pub fn row(&mut self, cols: &[String]) {
        self.text += &format!("| {} |\n", cols.join(" | "));
        eprintln!("  {}", cols.join("  "));
    }
}
