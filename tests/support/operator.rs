//! The real `securescore run` binary as a child process, pointed at an emulated API server.

use super::apiserver::ApiServer;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running operator; killed on drop.
pub struct Operator {
    pub child: Child,
    /// Port of /metrics, /healthz and /readyz.
    pub metrics: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP/1.0 GET on loopback: `(status code, body)`, or None when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

impl Operator {
    /// `securescore run` in namespace `securescore-system`, 200 ms debounce, JSON logs to a file.
    pub fn start(server: &ApiServer, extra: &[&str]) -> Operator {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig);
        Operator::spawn(dir, &kubeconfig, "securescore-system", extra)
    }

    /// `securescore run` against any API server (a real one: tests/operator_cluster.rs), in
    /// `namespace`, with the credentials of `kubeconfig`.
    pub fn start_with_kubeconfig(
        kubeconfig: &std::path::Path,
        namespace: &str,
        extra: &[&str],
    ) -> Operator {
        let dir = tempfile::tempdir().expect("temp dir");
        Operator::spawn(dir, kubeconfig, namespace, extra)
    }

    fn spawn(
        dir: tempfile::TempDir,
        kubeconfig: &std::path::Path,
        namespace: &str,
        extra: &[&str],
    ) -> Operator {
        let metrics = free_port();
        let log = dir.path().join("operator.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        // SECURESCORE_BIN runs another build (e.g. an older one, for before/after figures).
        let binary = std::env::var_os("SECURESCORE_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_securescore").into());
        let child = Command::new(binary)
            .arg("run")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics}")])
            .args([
                "--namespace",
                namespace,
                "--debounce-ms",
                "200",
                "--log-format",
                "json",
            ])
            .args(extra)
            .env("RUST_LOG", "info,securescore=debug")
            .env_remove("POD_NAMESPACE")
            .env_remove("POD_NAME")
            .env_remove("KUBECONFIG")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("the securescore binary starts");
        Operator {
            child,
            metrics,
            log,
            _dir: dir,
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET on the operator's HTTP port.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.metrics, path)
    }

    /// The /metrics text (the test fails when it does not answer 200).
    pub fn scrape(&self) -> String {
        let (code, body) = self.get("/metrics").expect("/metrics answers");
        assert_eq!(code, 200, "{body}");
        body
    }

    /// `securescore_full_evaluations_total` by reason, the reasons counted at least once.
    pub fn full_evaluations(&self) -> Vec<(String, f64)> {
        full_evaluations(&self.scrape())
    }

    /// SIGTERM, then wait up to 25 s for the exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(25);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `securescore_full_evaluations_total` by reason in a scrape, the reasons counted at least once.
pub fn full_evaluations(metrics: &str) -> Vec<(String, f64)> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("securescore_full_evaluations_total{reason=\""))
        .filter_map(|l| {
            let (reason, rest) = l.split_once('"')?;
            Some((reason.to_string(), rest.rsplit(' ').next()?.parse().ok()?))
        })
        .filter(|(_, n)| *n > 0.0)
        .collect()
}
