//! A real Prometheus server on loopback, for tests that check rules and dashboard queries
//! against real evaluation (installed by scripts/install/prometheus.sh).

use super::operator::{free_port, http_get};
use super::tools::tool;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running Prometheus; killed on drop.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes `127.0.0.1:metrics_port` every second and evaluates `rule_files` every second.
    pub fn start(metrics_port: u16, rule_files: &[&Path]) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let rules: String = rule_files
            .iter()
            .map(|f| format!("  - {}\n", f.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{rules}scrape_configs:\n  - job_name: securescore\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("prometheus.yml");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let child = Command::new(tool("prometheus", "prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        Prometheus { child, port, dir }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `/api/v1/query`: the JSON answer, or None while unreachable.
    pub fn query(&self, promql: &str) -> Option<Value> {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", promql)
            .finish();
        let (_, body) = http_get(self.port, &format!("/api/v1/query?{q}"))?;
        serde_json::from_str(&body).ok()
    }

    /// The value of a query that returns exactly one sample.
    pub fn one(&self, promql: &str) -> Option<f64> {
        let answer = self.query(promql)?;
        let result = answer["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
