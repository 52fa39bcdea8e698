//! Runs the emulated Kubernetes API server (tests/support/apiserver) until killed, for manual
//! kubectl experiments and benchmarks:
//!
//!     cargo run --example apiserver -- [--port 6443] [--kubeconfig /tmp/emulated.kubeconfig]
//!     KUBECONFIG=/tmp/emulated.kubeconfig kubectl get ia

#[allow(dead_code)]
#[path = "../tests/support/apiserver/mod.rs"]
mod apiserver;

use apiserver::{ApiServer, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut opts = Options::default();
    let mut kubeconfig = std::env::temp_dir().join("securescore-emulated.kubeconfig");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let v = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--port needs a value"))?;
                opts.port = v.parse().map_err(|e| anyhow::anyhow!("--port {v}: {e}"))?;
            }
            "--kubeconfig" => {
                kubeconfig = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--kubeconfig needs a path"))?
                    .into();
            }
            other => {
                anyhow::bail!("unknown argument {other} (expected --port N, --kubeconfig PATH)")
            }
        }
    }
    let server = ApiServer::start_with(opts).await;
    server.write_kubeconfig(&kubeconfig);
    println!(
        "emulated API server at {}; kubeconfig written to {}",
        server.url(),
        kubeconfig.display()
    );
    tokio::signal::ctrl_c().await?;
    server.stop().await;
    Ok(())
}
