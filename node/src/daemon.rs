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
    let node = crate::node::start(&dir, &config).await?;
    let handle = node.handle.clone();
    let public = crate::public::bind(&dir, &config).await?;
    let public_url = public.as_ref().map(crate::public::Bound::url);
    let api = crate::api::serve(&dir, &config, handle.clone(), public_url, shutdown.clone()).await?;
    let public = public.map(|p| p.serve(handle.clone(), shutdown.clone()));
    std::fs::write(dir.pid_path(), format!("{}\n", std::process::id()))?;

    let result = node.run(shutdown).await;
    let _ = api.await;
    if let Some(public) = public {
        let _ = public.await;
        let _ = std::fs::remove_file(dir.public_addr_path());
    }
    let _ = std::fs::remove_file(dir.pid_path());
    let _ = std::fs::remove_file(dir.api_addr_path());
    result
}
