//! Headless Chromium through chromedriver, for `tests/browser.rs`: finding the
//! browser (or failing with how to install it), a session with a throwaway profile,
//! and the few page operations the tests share.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(30);

/// Records every CSP violation on the page, from before the page's first script.
const CSP_SPY: &str = "window.__csp = []; document.addEventListener('securitypolicyviolation', \
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";

/// A browser, or `None` when `BROKERGRAPH_SKIP_BROWSER=1` says to skip; panics when
/// Chromium or chromedriver is missing, so a machine without them cannot pass.
pub async fn browser() -> Option<Browser> {
    if std::env::var("BROKERGRAPH_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("BROKERGRAPH_SKIP_BROWSER=1: the GraphiQL browser test is skipped");
        return None;
    }
    let chromium = tool("BROKERGRAPH_CHROMIUM", CHROMIUM);
    let driver = tool("BROKERGRAPH_CHROMEDRIVER", CHROMEDRIVER);
    let browser = Browser::start(&driver, &chromium).await;
    browser
        .client
        .issue_cmd(Cdp(json!({
            "cmd": "Page.addScriptToEvaluateOnNewDocument",
            "params": { "source": CSP_SPY },
        })))
        .await
        .expect("chromedriver passes DevTools commands");
    Some(browser)
}

/// The text of the CodeMirror editor under `selector` once it is non-empty and
/// contains `needle`.
pub async fn editor_text(client: &Client, selector: &str, needle: &str) -> String {
    let script = format!(
        "const t = document.querySelector({selector:?})?.CodeMirror.getValue() ?? ''; \
         return t.includes({needle:?}) ? t : null"
    );
    poll(client, &script).await.as_str().unwrap().to_string()
}

/// Clicks GraphiQL's run button, as a person would.
pub async fn run(client: &Client) {
    // React may redraw the button between finding and clicking it (a stale
    // element): find it again.
    for _ in 0..20 {
        let button = client
            .find(Locator::Css(".graphiql-execute-button"))
            .await
            .expect("the run button");
        match button.click().await {
            Ok(_) => return,
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("click: {e:?}"),
        }
    }
    panic!("the run button kept going stale");
}

/// Fails the test if the page broke its own Content-Security-Policy.
pub async fn assert_no_csp_violation(client: &Client) {
    let violations = client.execute("return window.__csp", vec![]).await.unwrap();
    assert_eq!(violations, json!([]), "the page broke its own CSP");
}

/// The path of a tool, or a failure that says how to get it.
fn tool(env: &str, default: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var(env).unwrap_or_else(|_| default.to_string()));
    assert!(
        path.exists(),
        "{} not found: the GraphiQL browser test needs Debian's chromium and \
         chromium-driver (`apt-get install -y chromium chromium-driver`; .ci/run does it), \
         or {env} pointing at one; set BROKERGRAPH_SKIP_BROWSER=1 to skip this test",
        path.display()
    );
    path
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Runs `script` until it returns something other than null, or fails the test
/// with what the page shows.
pub async fn poll(client: &Client, script: &str) -> Value {
    let start = Instant::now();
    loop {
        let value = client.execute(script, vec![]).await.expect("script runs");
        if !value.is_null() {
            return value;
        }
        if start.elapsed() > WAIT {
            let page = client
                .execute("return document.body.innerText", vec![])
                .await;
            panic!("timed out waiting for `{script}`; the page shows: {page:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// chromedriver and a Chromium session, with a profile of its own that is deleted
/// afterwards; the driver (and so the browser) is killed even if the test panics.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    async fn start(driver: &Path, chromium: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!(
            "brokergraph-chromium-{}-{port}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        let browser = Browser {
            client: connect(port, chromium, &profile).await,
            driver,
            profile,
        };
        browser.client.set_window_size(1440, 900).await.ok();
        browser
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Connects once chromedriver listens; it takes a moment to start.
async fn connect(port: u16, chromium: &Path, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1440,900",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let caps = json!({
        "goog:chromeOptions": { "binary": chromium.to_str().unwrap(), "args": args },
    });
    let caps: serde_json::Map<String, Value> = caps.as_object().unwrap().clone();
    let start = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return client,
            Err(e) if start.elapsed() > WAIT => panic!("chromedriver/chromium: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A Chrome DevTools command sent through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp(Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.0.to_string()))
    }
}
