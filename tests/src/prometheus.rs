//! A real Prometheus (Debian's package, unpacked by `make prometheus`; `BOOSTER_PROMETHEUS`
//! names its binary) scraping the booster every second and evaluating the shipped alert
//! rules every second; and the checks of the shipped dashboard and rules against it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::control_plane::{free_port, log_to};
use crate::e2e::{eventually, http_get};

/// The Prometheus binary, if there is one (`BOOSTER_PROMETHEUS`).
pub fn binary() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("BOOSTER_PROMETHEUS")?);
    p.is_file().then_some(p)
}

/// Whether a missing Prometheus fails the suite (`make test` sets it).
pub fn required() -> bool {
    std::env::var_os("BOOSTER_REQUIRE_PROMETHEUS").is_some()
}

/// The rule file and the dashboard the chart ships.
pub fn shipped(repo: &Path) -> (PathBuf, PathBuf) {
    let files = repo.join("deploy/helm/aws-spots-booster/files");
    (files.join("alerts.yaml"), files.join("dashboard.json"))
}

/// A running Prometheus; stopped on drop.
pub struct Prometheus {
    child: Child,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts `bin` in `dir`, scraping `targets` (ports on 127.0.0.1) with `rules` loaded.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        targets: &[u16],
        rules: &Path,
    ) -> Result<Prometheus, String> {
        let port = free_port();
        let targets: Vec<String> = targets.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - '{}'\nscrape_configs:\n  - job_name: aws-spots-booster\n    static_configs:\n      - targets: [{}]\n",
            rules.display(),
            targets.join(", ")
        );
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).map_err(|e| format!("prometheus.yml: {e}"))?;
        let (out, err) = log_to(&dir.join("prometheus.log"))?;
        let child = Command::new(bin)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let p = Prometheus { child, port };
        eventually(30, "Prometheus ready", || async {
            matches!(http_get(port, "/-/ready").await, Some((200, _)))
        })
        .await?;
        Ok(p)
    }

    /// `GET path` decoded as Prometheus's JSON envelope; its `data`.
    async fn api(&self, path: &str) -> Result<serde_json::Value, String> {
        let (code, body) = http_get(self.port, path)
            .await
            .ok_or_else(|| format!("{path}: no answer"))?;
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("{path}: {code} {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{path}: {code} {body}"));
        }
        Ok(v["data"].clone())
    }

    /// Evaluates `expr` now (it must parse and type-check).
    pub async fn query(&self, expr: &str) -> Result<serde_json::Value, String> {
        self.api(&format!("/api/v1/query?query={}", encode(expr)))
            .await
    }

    /// Whether any series of metric `name` was scraped since `since` (Unix seconds).
    pub async fn has_series(&self, name: &str, since: i64) -> Result<bool, String> {
        let m = encode(&format!("{{__name__=\"{name}\"}}"));
        let data = self
            .api(&format!("/api/v1/series?match[]={m}&start={since}"))
            .await?;
        Ok(data.as_array().is_some_and(|a| !a.is_empty()))
    }

    /// The alerts now, as (name, state).
    pub async fn alerts(&self) -> Result<Vec<(String, String)>, String> {
        let data = self.api("/api/v1/alerts").await?;
        Ok(data["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["labels"]["alertname"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            x["state"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Waits up to `secs` for the scrape of every target to be up.
    pub async fn wait_scraped(&self, secs: u64) -> Result<(), String> {
        eventually(secs, "Prometheus scrapes the booster", || async {
            self.query("min(up{job=\"aws-spots-booster\"})")
                .await
                .ok()
                .and_then(|d| d["result"][0]["value"][1].as_str().map(|v| v == "1"))
                .unwrap_or(false)
        })
        .await
    }
}

/// Percent-encoding for a query string value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The metric names an expression reads (the booster's own and the Go project's): the
/// `spots_booster_…` and `aws_spots_booster_…` identifiers in it.
pub fn metrics_named(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            // A label value, not a name.
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if ident(bytes[i]) && (i == 0 || !ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && ident(bytes[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            if word.starts_with("spots_booster_") || word.starts_with("aws_spots_booster_") {
                names.push(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Every query of a Grafana dashboard (its panels' targets), Grafana's `$__rate_interval`
/// given a value Prometheus reads.
pub fn dashboard_queries(dashboard: &str) -> Result<Vec<(String, String)>, String> {
    let v: serde_json::Value = serde_json::from_str(dashboard).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for p in v["panels"].as_array().ok_or("no panels")? {
        let title = p["title"].as_str().unwrap_or_default();
        for t in p["targets"]
            .as_array()
            .ok_or(format!("{title}: no targets"))?
        {
            let expr = t["expr"]
                .as_str()
                .ok_or(format!("{title}: a target without expr"))?;
            out.push((title.to_string(), expr.replace("$__rate_interval", "30s")));
        }
    }
    Ok(out)
}

/// Every alert of a rule file, as (name, expression).
pub fn alert_rules(rules: &str) -> Result<Vec<(String, String)>, String> {
    let v: serde_json::Value = serde_saphyr::from_str(rules).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for g in v["groups"].as_array().ok_or("no groups")? {
        for r in g["rules"].as_array().ok_or("a group without rules")? {
            if let (Some(a), Some(e)) = (r["alert"].as_str(), r["expr"].as_str()) {
                out.push((a.to_string(), e.to_string()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_an_expression_names() {
        assert_eq!(
            metrics_named(
                "histogram_quantile(0.99, sum by (le) (rate(spots_booster_x_bucket[1m]))) / aws_spots_booster_nodes_total{a=\"spots_booster_not\"}"
            ),
            vec!["aws_spots_booster_nodes_total", "spots_booster_x_bucket"]
        );
    }

    #[test]
    fn the_shipped_files_parse() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let (rules, dash) = shipped(&repo);
        let rules = alert_rules(&std::fs::read_to_string(rules).expect("rules")).expect("rules");
        assert!(rules.len() >= 7, "{rules:?}");
        let queries =
            dashboard_queries(&std::fs::read_to_string(dash).expect("dashboard")).expect("json");
        assert!(queries.len() >= 15);
        for (title, q) in queries {
            assert!(!q.contains('$'), "{title}: {q}");
            assert!(
                !metrics_named(&q).is_empty(),
                "{title} reads no booster metric: {q}"
            );
        }
    }
}
