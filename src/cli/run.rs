use crate::controller::{self, Settings};
use crate::metrics::ActionSeries;
use clap::{Args, ValueEnum};
use std::process::ExitCode;
use std::time::Duration;

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Run the operator: reconcile SecureScoreTargets and ImprovementActions in the cluster.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "SECURESCORE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: std::net::SocketAddr,
    /// Elect a leader through a coordination.k8s.io Lease (run several replicas safely).
    #[arg(long, env = "SECURESCORE_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(
        long,
        env = "SECURESCORE_LEASE_NAME",
        default_value = "securescore-leader"
    )]
    pub lease_name: String,
    /// Namespace of the Lease (default: the operator's namespace).
    #[arg(long, env = "SECURESCORE_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Seconds a lease is valid without renewal.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_seconds: u64,
    /// Namespaces whose targets may evaluate other namespaces, use selectors or read cluster
    /// resources (comma-separated; default: the operator's namespace).
    #[arg(
        long,
        env = "SECURESCORE_CLUSTER_TARGET_NAMESPACES",
        value_delimiter = ','
    )]
    pub cluster_target_namespaces: Vec<String>,
    /// The operator's namespace (default: $POD_NAMESPACE, else the kubeconfig's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// This replica's identity in leader election (default: $POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Log format.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "SECURESCORE_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Targets evaluated at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Milliseconds to wait for more changes before evaluating a target (a rollout of 500 pods
    /// yields a handful of evaluations, not 500).
    #[arg(long, default_value_t = 2000)]
    pub debounce_ms: u64,
    /// Per-action series to export: all, nonzero (only actions with points to gain) or none.
    #[arg(long, value_enum, default_value = "all")]
    pub metrics_actions: ActionSeries,
}

pub fn run(args: RunArgs) -> ExitCode {
    crate::cli::init_logging(matches!(args.log_format, LogFormat::Json));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("securescore run: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "securescore run failed");
            ExitCode::from(1)
        }
    }
}

async fn run_async(args: RunArgs) -> anyhow::Result<()> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| anyhow::anyhow!("cannot read kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config)?;
    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("securescore-{}", std::process::id()));
    let cluster_target_namespaces = if args.cluster_target_namespaces.is_empty() {
        [namespace.clone()].into()
    } else {
        args.cluster_target_namespaces
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let settings = Settings {
        lease_namespace: args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| namespace.clone()),
        namespace,
        cluster_target_namespaces,
        leader_election: args.leader_election,
        lease_name: args.lease_name.clone(),
        lease_duration: Duration::from_secs(args.lease_duration_seconds.max(2)),
        identity,
        concurrency: args.concurrency.max(1),
        debounce: Duration::from_millis(args.debounce_ms),
        metrics_addr: args.metrics_addr,
        metrics_actions: args.metrics_actions,
    };
    tracing::info!(
        namespace = %settings.namespace,
        identity = %settings.identity,
        leader_election = settings.leader_election,
        cluster_target_namespaces = ?settings.cluster_target_namespaces,
        "starting the securescore operator"
    );
    controller::check_crds(&client).await?;
    controller::run(client, settings, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
