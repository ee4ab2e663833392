//! `paychan run`: the node composed with its control API and its public read endpoints.
//!
//! The node ([`crate::node`]) knows neither HTTP layer; this module starts the node, serves the
//! two layers on its handle, writes `node.pid`, and tears everything down in order on shutdown.

use anyhow::Result;
use tokio::sync::watch;

use crate::config::DataDir;

/// Runs the node in `dir` until `shutdown` turns true.
pub async fn run(dir: DataDir, shutdown: watch::Receiver<bool>) -> Result<()> {
    let config = dir.config()?;
    run_with(dir, config, shutdown).await
}

/// Runs the node in `dir` with `config` (the file's, or one a command changed) until
/// `shutdown` turns true.
pub async fn run_with(
    dir: DataDir,
    config: crate::config::Config,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let node = crate::node::start(&dir, &config).await?;
    let handle = node.handle.clone();
    let metrics = crate::metrics::spawn(handle.clone(), shutdown.clone());
    let public = crate::public::bind(&dir, &config).await?;
    let public_url = public.as_ref().map(crate::public::Bound::url);
    let api = crate::api::serve(&dir, &config, handle.clone(), public_url, shutdown.clone()).await?;
    let public = public.map(|p| p.serve(handle.clone(), shutdown.clone()));
    let gateway = match config.gateway.clone() {
        Some(g) => Some(crate::gateway::serve(&dir, g, handle.clone(), shutdown.clone()).await?),
        None => None,
    };
    std::fs::write(dir.pid_path(), format!("{}\n", std::process::id()))?;

    let result = node.run(shutdown).await;
    let _ = api.await;
    let _ = metrics.await;
    if let Some(public) = public {
        let _ = public.await;
        let _ = std::fs::remove_file(dir.public_addr_path());
    }
    if let Some(gateway) = gateway {
        let _ = gateway.await;
        let _ = std::fs::remove_file(crate::gateway::addr_path(&dir));
    }
    let _ = std::fs::remove_file(dir.pid_path());
    let _ = std::fs::remove_file(dir.api_addr_path());
    result
}
