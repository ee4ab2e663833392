//! The demo's pay-per-use part (`paychan testnet demo`): a static site behind a 402 gateway.
//!
//! The demo writes a small site (a few articles and one larger file) into the testnet's
//! directory, makes the testnet's last node its gateway (`[gateway]` with `upstream =
//! "dir:SITE"` in its config.toml, then a restart), and a reader (a client key of the testnet,
//! through [`PaidHttpClient`]) reads it: [`REQUESTS`] paid article requests, the larger file
//! streamed and paid per KiB, and one donation to the creator (the gateway's node, advertised
//! in `extra.donateTo` and a `Link` header). The reader closes its channel; the creator's
//! balance on every replica must have grown by exactly what the reader paid. The credit part
//! ([`crate::demo_credit`]) follows, against the same gateway.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use crate::client::read_key;
use crate::config::DataDir;
use crate::demo::balance;
use crate::fetch::PaidHttpClient;
use crate::gateway::{GatewayConfig, KIB};
use crate::http::ApiClient;
use crate::output::grouped;
use crate::testnet::{self, NodeStatus};

/// Paid article requests.
pub const REQUESTS: u64 = 1_000;
/// The price of one request.
pub const PRICE: u64 = 2;
/// The price of each KiB of a body after the first.
pub const PRICE_PER_KIB: u64 = 1;
/// The larger file's size: 256 KiB.
pub const FILE_KIB: u64 = 256;
/// The reader's donation to the creator.
pub const DONATION: u64 = 500;
/// How many articles the site has.
const ARTICLES: usize = 5;
/// The reader's key (`clients/client-K.key`).
const READER: usize = 2;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

fn article(i: usize) -> String {
    format!(
        "<!doctype html>\n<title>Article {i}</title>\n<h1>Article {i}</h1>\n<p>{}</p>\n",
        "A paragraph worth a small payment. ".repeat(8)
    )
}

fn large_file() -> Vec<u8> {
    (0..FILE_KIB * KIB as u64).map(|i| (i % 251) as u8).collect()
}

/// Writes the site into `site`: `index.html`, `articles/N.html`, `files/large.bin`.
fn write_site(site: &Path) -> Result<()> {
    std::fs::create_dir_all(site.join("articles"))?;
    std::fs::create_dir_all(site.join("files"))?;
    let mut index = String::from("<!doctype html>\n<title>A small site</title>\n<ul>\n");
    for i in 0..ARTICLES {
        std::fs::write(site.join("articles").join(format!("{i}.html")), article(i))?;
        index.push_str(&format!("<li><a href=\"/articles/{i}.html\">Article {i}</a>\n"));
    }
    index.push_str("</ul>\n");
    std::fs::write(site.join("index.html"), index)?;
    std::fs::write(site.join("files").join("large.bin"), large_file())?;
    Ok(())
}

/// Runs the part against the running testnet in `root`; returns the checks that failed.
/// Node `x`'s API moves with its restart: `apis[x]` is replaced by its new address.
pub async fn run(
    root: &Path,
    rows: &[NodeStatus],
    dirs: &[DataDir],
    apis: &mut [ApiClient],
) -> Result<Vec<String>> {
    let x = rows.len() - 1;
    ensure!(x > 0, "the site part needs a node besides the sequencer");
    let info: Value = {
        let api = apis[x].clone();
        blocking(move || api.get("info")).await?
    };
    let creator = info["account"].as_str().context("account")?.to_owned();
    let site = root.join("site");
    write_site(&site)?;
    println!(
        "\npay per use: node-{x} serves a static site ({} articles and a {FILE_KIB} KiB file) through its 402 gateway",
        ARTICLES
    );
    println!("  price {PRICE} per request, {PRICE_PER_KIB} per KiB after the first, donations to node-{x} (the creator)");
    let mut config = dirs[x].config()?;
    config.gateway = Some(GatewayConfig {
        upstream: format!("dir:{}", site.canonicalize()?.display()),
        listen: "127.0.0.1:0".into(),
        price: PRICE,
        price_per_kib: PRICE_PER_KIB,
        free: Vec::new(),
        donate_to: Some(creator.clone()),
    });
    dirs[x].write_config(&config)?;
    let addr_file = crate::gateway::addr_path(&dirs[x]);
    let _ = std::fs::remove_file(&addr_file);
    {
        let root = root.to_path_buf();
        blocking(move || testnet::restart_node(&root, x)).await?;
    }
    apis[x] = ApiClient::from_data_dir(&dirs[x])?;
    let gateway = std::fs::read_to_string(&addr_file)
        .context("the gateway did not write gateway.addr")?
        .trim()
        .to_owned();
    let base = format!("http://{gateway}");
    let creator_before = balance(&apis[0], &creator).await?;

    let chain = dirs[0].genesis()?.chain_id();
    let key = read_key(&root.join("clients").join(format!("client-{READER}.key")))?;
    let mut reader = PaidHttpClient::new(key, 1_000_000, PRICE, Some(chain));
    let mut failures = Vec::new();

    // The first request opens the channel with the gateway's node; the rate counts after it.
    let bar = crate::demo::bar(
        &format!("client-{READER} reads articles ({PRICE} each)"),
        REQUESTS,
    );
    let mut charged = 0u64;
    let mut wrong_bodies = 0u64;
    let mut started = Instant::now();
    for n in 0..REQUESTS {
        let i = (n as usize) % ARTICLES;
        let r = reader.get(&format!("{base}/articles/{i}.html")).await?;
        if r.status != 200 || r.body != article(i).as_bytes() {
            wrong_bodies += 1;
        }
        charged += r.charged;
        if n == 0 {
            started = Instant::now();
        }
        if n % 100 == 99 {
            bar.set_position(n + 1);
        }
    }
    bar.finish();
    let rate = (REQUESTS - 1) as f64 / started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "  {} paid requests answered, {} charged ({} paid requests/s, one at a time)",
        grouped(REQUESTS),
        grouped(charged),
        grouped(rate.round() as u64)
    );
    if wrong_bodies > 0 {
        failures.push(format!(
            "site: {wrong_bodies} article answers differ from the files"
        ));
    }
    if charged != REQUESTS * PRICE {
        failures.push(format!(
            "site: articles charged {charged}, expected {} x {PRICE}",
            REQUESTS
        ));
    }

    let file = reader.get(&format!("{base}/files/large.bin")).await?;
    let file_expected = PRICE + (FILE_KIB - 1) * PRICE_PER_KIB;
    println!(
        "  streamed files/large.bin: {} bytes, charged {} ({PRICE} for the request, {PRICE_PER_KIB} for each of {} KiB after the first)",
        grouped(file.body.len() as u64),
        file.charged,
        FILE_KIB - 1
    );
    if file.status != 200 || file.body != large_file() {
        failures.push(format!(
            "site: the streamed file came back as {} bytes with status {}",
            file.body.len(),
            file.status
        ));
    }
    if file.charged != file_expected {
        failures.push(format!(
            "site: the streamed file was charged {}, expected {file_expected}",
            file.charged
        ));
    }

    reader.donate(DONATION, "article 0").await?;
    println!("  client-{READER} tipped the creator (node-{x}) {DONATION} for article 0");
    let expected_paid = REQUESTS * PRICE + file_expected + DONATION;
    if reader.spent() != expected_paid {
        failures.push(format!(
            "site: the reader counts {} spent, expected {expected_paid}",
            reader.spent()
        ));
    }

    // The cooperative close pays the creator out on the ledger (it returns once witnessed).
    reader.close().await?;
    let target = {
        let api = apis[0].clone();
        blocking(move || api.get("ledger/status")).await?["height"]
            .as_u64()
            .context("height")?
    };
    let expected = creator_before + expected_paid;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut actual = Vec::new();
    for api in apis.iter() {
        loop {
            let a = api.clone();
            let h = blocking(move || a.get("ledger/status")).await?["height"]
                .as_u64()
                .unwrap_or(0);
            if h >= target {
                break;
            }
            ensure!(Instant::now() < deadline, "a replica did not catch up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        actual.push(balance(api, &creator).await?);
    }
    let ok = actual.iter().all(|b| *b == expected);
    println!(
        "  requests {}, amount paid {} ({} + {file_expected} + {DONATION} donated); creator's balance {} -> {} (expected {})  {}",
        grouped(REQUESTS + 1),
        grouped(reader.spent()),
        grouped(REQUESTS * PRICE),
        grouped(creator_before),
        grouped(actual[0]),
        grouped(expected),
        if ok { "ok" } else { "MISMATCH" }
    );
    if !ok {
        failures.push(format!(
            "site: the creator's balance should be {expected}, replicas report {actual:?}"
        ));
    }
    failures.extend(
        crate::demo_credit::run(
            &apis[0],
            &apis[x],
            x,
            &format!("{base}/articles/0.html"),
            PRICE,
            chain,
        )
        .await?,
    );
    Ok(failures)
}
