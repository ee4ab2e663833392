//! The public read listener of a running testnet node: no token, read only, nothing but its own
//! paths, raw ledger bytes that replay to the node's height, tiles that agree with the entries,
//! and a per-IP rate limit.

mod common;

use common::*;
use paychan_protocol::merkle::{leaf_hash, root_from_leaf_hashes, verify_inclusion};
use paychan_protocol::{Block, Genesis, Hash32, SignedCheckpoint, Tx, Wire};

/// A GET or POST without a token: status, headers of interest and the body bytes.
struct Answer {
    status: u16,
    content_type: String,
    cache_control: String,
    retry_after: Option<String>,
    body: Vec<u8>,
}

fn call(agent: &ureq::Agent, method: &str, url: &str) -> Answer {
    let resp = match method {
        "GET" => agent.get(url).call(),
        "HEAD" => agent.head(url).call(),
        "POST" => agent.post(url).send(&b"{}"[..]),
        other => panic!("no method {other}"),
    };
    let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let cache_control = header("cache-control").unwrap_or_default();
    let retry_after = header("retry-after");
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("{method} {url} body: {e}"));
    Answer {
        status,
        content_type,
        cache_control,
        retry_after,
        body,
    }
}

fn get_ok(agent: &ureq::Agent, url: &str) -> Answer {
    let a = call(agent, "GET", url);
    assert_eq!(a.status, 200, "GET {url}: {}", String::from_utf8_lossy(&a.body));
    a
}

/// Splits `u32 BE length ‖ bytes` records.
fn records(mut b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !b.is_empty() {
        assert!(b.len() >= 4, "truncated record length");
        let len = u32::from_be_bytes(b[..4].try_into().expect("4 bytes")) as usize;
        assert!(b.len() >= 4 + len, "truncated record");
        out.push(&b[4..4 + len]);
        b = &b[4 + len..];
    }
    out
}

/// Splits an entry bundle (`u16 BE length ‖ bytes` entries).
fn bundle(mut b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = u16::from_be_bytes([b[0], b[1]]) as usize;
        out.push(&b[2..2 + len]);
        b = &b[2 + len..];
    }
    out
}

/// Transactions the test makes: one full tile and a partial one.
const TXS: u64 = 300;

#[test]
fn public_listener_serves_tiles_and_raw_ledger_without_token_and_limits_rate() {
    let net = Testnet::up(2);
    let agent = agent();
    let api = net.api(0);

    // The address is in the data dir, in `testnet status` and in `/v1/info`.
    let addr = std::fs::read_to_string(net.dir(0).join("public.addr")).expect("public.addr");
    let public = format!("http://{}", addr.trim());
    assert!(public.starts_with("http://127.0.0.1:"), "{public}");
    let rows = net.status_rows();
    assert_eq!(rows[0]["public_url"], public.as_str(), "status: {}", rows[0]);
    assert!(
        rows[1]["public_url"].as_str().is_some_and(|u| u != public),
        "{}",
        rows[1]
    );
    assert_eq!(api.get("/v1/info").expect("info")["public_url"], public.as_str());

    // More than one full tile of transactions (a refused one, if the mempool is full, is
    // submitted again).
    let to = net.client_key(0).public();
    for _ in 0..TXS {
        wait_until("a transfer accepted", STEP, || api.transfer(&to, 1));
    }
    let height = wait_until("the transactions in the log", STEP, || {
        let s = api.status()?;
        match (s["log_size"].as_u64(), s["height"].as_u64()) {
            (Some(n), Some(h)) if n >= TXS => Ok(h),
            _ => Err(format!("status {s}")),
        }
    });

    // Not the control API: `/v1/` is not served there, and needs the token on the API.
    for path in [
        "/v1/info",
        "/v1/ledger/status",
        "/metrics",
        "/tlog/",
        "/ledger/nope",
    ] {
        assert_eq!(
            call(&agent, "GET", &format!("{public}{path}")).status,
            404,
            "{path}"
        );
    }
    for path in ["/v1/info", "/v1/ledger/raw/genesis", "/v1/nothing"] {
        assert_eq!(
            call(&agent, "GET", &format!("{}{path}", api.base)).status,
            401,
            "{path}"
        );
    }
    // Read only.
    for path in ["/ledger/genesis", "/tlog/checkpoint", "/v1/transfer"] {
        let a = call(&agent, "POST", &format!("{public}{path}"));
        assert_eq!(a.status, 405, "POST {path}");
    }

    // Genesis: the canonical bytes, the same through the token API's raw route.
    let genesis_bytes = std::fs::read(net.dir(0).join("genesis.bin")).expect("genesis.bin");
    let g = get_ok(&agent, &format!("{public}/ledger/genesis"));
    assert_eq!(g.content_type, "application/octet-stream");
    assert_eq!(g.body, genesis_bytes);
    let genesis = Genesis::from_bytes(&g.body).expect("genesis decodes");
    let via_api = agent
        .get(format!("{}/v1/ledger/raw/genesis", api.base))
        .header("Authorization", format!("Bearer {}", api.token))
        .call()
        .expect("raw genesis through the API")
        .body_mut()
        .read_to_vec()
        .expect("body");
    assert_eq!(via_api, genesis_bytes);
    let head = call(&agent, "HEAD", &format!("{public}/ledger/genesis"));
    assert_eq!((head.status, head.body.len()), (200, 0));

    // Blocks, paged, replay to (at least) the node's height.
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let a = get_ok(
            &agent,
            &format!("{public}/ledger/blocks?from={}&limit=8", blocks.len() + 1),
        );
        let page = records(&a.body);
        assert!(page.len() <= 8);
        if page.is_empty() {
            break;
        }
        blocks.extend(page.iter().map(|b| Block::from_bytes(b).expect("block decodes")));
    }
    let state = paychan_ledger::verify_chain(&genesis, &blocks).expect("the public blocks replay");
    assert!(state.height() >= height, "replayed {} < {height}", state.height());
    let size = state.log_size();
    assert!((TXS..512).contains(&size), "log size {size}");
    let txs: Vec<&Tx> = blocks.iter().flat_map(|b| &b.txs).collect();
    assert_eq!(txs.len() as u64, size);

    // Level-0 tiles and their entry bundles agree with the blocks: the full tile 0 (immutable)
    // and the partial tile 1 over the replayed log size.
    let rest = size - 256;
    for (index, width, path) in [
        (0u64, 256u64, "000".to_owned()),
        (1, rest, format!("001.p/{rest}")),
    ] {
        let tile = get_ok(&agent, &format!("{public}/tlog/tile/0/{path}"));
        assert_eq!(tile.content_type, "application/octet-stream");
        assert_eq!(tile.body.len() as u64, 32 * width);
        let entries = get_ok(&agent, &format!("{public}/tlog/tile/entries/{path}"));
        assert_eq!(entries.content_type, "application/octet-stream");
        if width == 256 {
            assert_eq!(tile.cache_control, "public, max-age=31536000, immutable");
            assert_eq!(entries.cache_control, "public, max-age=31536000, immutable");
        } else {
            assert!(
                !tile.cache_control.contains("immutable"),
                "{}",
                tile.cache_control
            );
            assert!(
                !entries.cache_control.contains("immutable"),
                "{}",
                entries.cache_control
            );
        }
        let entries = bundle(&entries.body);
        assert_eq!(entries.len() as u64, width);
        let start = (index * 256) as usize;
        for (i, e) in entries.iter().enumerate() {
            let tx = txs[start + i];
            assert_eq!(
                *e,
                tx.bytes().as_slice(),
                "entry {} is the transaction's bytes",
                start + i
            );
            assert_eq!(
                &tile.body[32 * i..32 * (i + 1)],
                leaf_hash(e).as_bytes(),
                "leaf {}",
                start + i
            );
            assert_eq!(leaf_hash(e), tx.leaf_hash());
        }
    }
    // Level 1: one hash so far, the root of the first 256 leaves.
    let level1 = get_ok(&agent, &format!("{public}/tlog/tile/1/000.p/1"));
    let first: Vec<Hash32> = txs[..256].iter().map(|t| t.leaf_hash()).collect();
    assert_eq!(level1.body, root_from_leaf_hashes(&first).as_bytes().to_vec());
    // No full tile where only a partial one exists, no tile beyond the log, no bad path.
    for path in [
        "0/001",
        "entries/001",
        "0/002.p/1",
        "1/000",
        "1/000.p/2",
        "2/000.p/1",
        "0/0",
        "0/x000/000",
    ] {
        assert_eq!(
            call(&agent, "GET", &format!("{public}/tlog/tile/{path}")).status,
            404,
            "{path}"
        );
    }

    // The latest checkpoint: raw, verified; as a signed note; an inclusion proof under it.
    let cp = wait_until("a checkpoint covering the transactions", STEP, || {
        let a = call(&agent, "GET", &format!("{public}/ledger/checkpoint"));
        if a.status != 200 {
            return Err(format!("status {}", a.status));
        }
        let cp = SignedCheckpoint::from_bytes(&a.body).map_err(|e| e.to_string())?;
        if cp.checkpoint.log_size < TXS {
            return Err("checkpoint below the transactions".into());
        }
        Ok(cp)
    });
    paychan_ledger::verify_checkpoint(&genesis, &cp).expect("the checkpoint verifies");
    let note = get_ok(&agent, &format!("{public}/tlog/checkpoint"));
    assert_eq!(note.content_type, "text/plain; charset=utf-8");
    let text = String::from_utf8(note.body).expect("utf-8 note");
    assert!(text.contains("\n\n\u{2014} "), "a signed note: {text}");
    let proof_size = cp.checkpoint.log_size;
    let tx = txs[0];
    let p = get_ok(
        &agent,
        &format!(
            "{public}/ledger/proof/inclusion?tx={}&size={proof_size}",
            tx.id().to_hex()
        ),
    );
    let index = u64::from_be_bytes(p.body[..8].try_into().expect("index"));
    let path: Vec<Hash32> = p.body[8..]
        .chunks(32)
        .map(|c| Hash32(c.try_into().expect("32 bytes")))
        .collect();
    verify_inclusion(&tx.leaf_hash(), index, proof_size, &path, &cp.checkpoint.log_root)
        .expect("the inclusion proof verifies against the checkpoint");
    let bad = call(
        &agent,
        "GET",
        &format!("{public}/ledger/proof/inclusion?tx=zz&size=1"),
    );
    assert_eq!(bad.status, 400);

    // A client that exceeds the rate gets 429 with Retry-After.
    let limited = (0..2_000)
        .map(|_| call(&agent, "GET", &format!("{public}/ledger/checkpoint")))
        .find(|a| a.status == 429)
        .expect("a burst of requests is rate limited");
    let retry: u64 = limited
        .retry_after
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry >= 1);
    // The control API is not affected.
    assert!(api.get("/v1/info").is_ok());
}
