//! A headless Chromium driven over the DevTools protocol (CDP) on one websocket: just what the
//! explorer tests need (open a page, evaluate script, wait for a condition, screenshots, and
//! every console error, uncaught exception and error log entry of the page).
//!
//! The browser is `chromium` on `PATH` (or `PAYCHAN_CHROMIUM`). Without it a test fails when
//! `CI=true` and is skipped with a message otherwise: see [`Browser::launch`].

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// Bound on one CDP command.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on the browser's start (until it prints its DevTools address).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running headless browser with one page attached.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Every event received so far (`method` and `params`).
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

/// The browser binary, if there is one.
fn chromium() -> Option<String> {
    if let Ok(p) = std::env::var("PAYCHAN_CHROMIUM") {
        return Some(p);
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(str::to_owned)
}

impl Browser {
    /// Starts the browser with a fresh profile and one blank page. `None` (after a message on
    /// stderr) when no browser is installed and `CI` is not `true`; panics when `CI=true`.
    pub fn launch() -> Option<Browser> {
        let Some(bin) = chromium() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but no chromium on PATH: the browser tests cannot run (.ci/run installs it)");
            }
            eprintln!("SKIPPED: no chromium on PATH (install Debian's chromium to run the browser tests)");
            return None;
        };
        let profile = tempfile::Builder::new()
            .prefix("paychan-chromium-")
            .tempdir()
            .expect("a profile dir");
        let mut child = Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the DevTools address, then keeps draining stderr so that the browser never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(url) = line.strip_prefix("DevTools listening on ") {
                        let _ = tx.send(url.trim().to_owned());
                        sent = true;
                    }
                }
            }
        });
        let url = match rx.recv_timeout(START_TIMEOUT) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{bin} printed no DevTools address within {START_TIMEOUT:?}");
            }
        };
        let host = url
            .strip_prefix("ws://")
            .and_then(|r| r.split('/').next())
            .expect("a ws:// DevTools address")
            .to_owned();
        let stream = TcpStream::connect(&host).expect("connect to DevTools");
        stream.set_read_timeout(Some(CALL_TIMEOUT)).expect("read timeout");
        let (ws, _) = tungstenite::client(url.as_str(), stream).expect("DevTools websocket handshake");
        // Short reads from here on: `answer` checks its deadline between them.
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 1,
            events: Vec::new(),
            _profile: profile,
        };
        let target = b.call_browser("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let att = b.call_browser(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        );
        b.session = att["sessionId"].as_str().expect("sessionId").to_owned();
        for m in ["Runtime.enable", "Log.enable", "Page.enable"] {
            b.call(m, json!({}));
        }
        Some(b)
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("send {method}: {e}"));
        id
    }

    /// Reads messages until the answer to `id`, keeping the events.
    fn answer(&mut self, id: u64, method: &str) -> Value {
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "no answer to {method} within {CALL_TIMEOUT:?}"
            );
            let msg = match self.ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => panic!("DevTools connection: {e}"),
            };
            let v: Value = serde_json::from_str(msg.as_str()).expect("DevTools sends JSON");
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    panic!("{method}: {err}");
                }
                return v["result"].clone();
            }
            if v.get("method").is_some() {
                self.events.push(v);
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(None, method, params);
        self.answer(id, method)
    }

    /// A CDP command to the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        let id = self.send(Some(&session), method, params);
        self.answer(id, method)
    }

    /// Opens `url` in the page (a change of the fragment only does not reload).
    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url }));
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its JSON value.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        if let Some(ex) = r.get("exceptionDetails") {
            panic!("evaluating {expr}: {ex}");
        }
        r["result"]["value"].clone()
    }

    /// Evaluates `expr` until it gives something other than `null`, `false` or nothing, for at
    /// most `timeout`; returns that value.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, expr: &str) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(expr);
            if !(v.is_null() || v == Value::Bool(false)) {
                return v;
            }
            if Instant::now() >= deadline {
                let body = self.eval("document.body ? document.body.innerText.slice(0, 2000) : ''");
                panic!(
                    "timed out after {timeout:?} waiting for {what}; the page shows:\n{}",
                    body.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sets the viewport (CSS pixels); `mobile` emulates a phone.
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        );
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        base64_decode(r["data"].as_str().expect("screenshot data"))
    }

    /// Every console error, uncaught exception and error-level log entry seen so far, as text.
    pub fn errors(&mut self) -> Vec<String> {
        // Pick up events that arrived since the last command.
        self.eval("1");
        self.events
            .iter()
            .filter_map(|e| {
                let p = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                        Some(format!("console.{}: {}", p["type"], p["args"]))
                    }
                    "Runtime.exceptionThrown" => Some(format!("exception: {}", p["exceptionDetails"])),
                    "Log.entryAdded" if p["entry"]["level"] == "error" => {
                        Some(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"]))
                    }
                    _ => None,
                }
            })
            .collect()
    }
}

impl Browser {
    /// Pins the keys the node at `public` announces on the page's origin (a test trusts its
    /// own testnet), waiting at most `timeout` for each step.
    pub fn pin_announced_keys(&mut self, public: &str, timeout: Duration) {
        self.goto(&format!("{public}/#/keys"));
        self.wait_for(
            "the keys form",
            timeout,
            "document.getElementById('pin-keys') && document.getElementById('pin-keys').value.includes('+')",
        );
        self.eval("document.getElementById('pin').click()");
        self.wait_for(
            "the keys to be pinned",
            timeout,
            "[...document.querySelectorAll('[role=status]')].some(e => e.textContent.startsWith('pinned'))",
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Standard base64 (with padding), as CDP sends binary data.
pub fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let take = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    out
}
