//! The README's first five minutes, exactly as pasted: its curl commands (parsed out
//! of README.md, quotes and line continuations as a shell reads them) and its
//! GraphQL examples, against a gateway on the embedded paper broker, as
//! `cargo run --release` starts it (only the port differs).

use std::time::Duration;

use brokergraph::config::Config;
use brokergraph::server::Gateway;
use serde_json::{json, Value};

const README: &str = include_str!("../../README.md");

/// The fenced blocks of `lang` in the README, in order.
fn blocks(lang: &str) -> Vec<String> {
    let fence = format!("```{lang}");
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in README.lines() {
        match &mut current {
            None if line.trim() == fence => current = Some(String::new()),
            Some(block) if line.trim() == "```" => {
                out.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Words as `sh` reads them: `\`-newline joins lines, single quotes keep
/// everything, double quotes keep everything but `\"` and `\\`.
fn shell_words(text: &str) -> Vec<String> {
    let text = text.replace("\\\n", " ");
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|c| *c != '\''));
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '#' if word.is_none() => {
                chars.by_ref().take_while(|c| *c != '\n').for_each(drop);
            }
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// One `curl` command of the README.
#[derive(Debug)]
struct Curl {
    url: String,
    headers: Vec<(String, String)>,
    data: Option<String>,
}

fn curl(words: &[String]) -> Curl {
    assert_eq!(words[0], "curl");
    let mut curl = Curl {
        url: String::new(),
        headers: Vec::new(),
        data: None,
    };
    let mut words = words[1..].iter();
    while let Some(word) = words.next() {
        match word.as_str() {
            "-H" => {
                let header = words.next().unwrap();
                let (name, value) = header.split_once(':').unwrap();
                curl.headers
                    .push((name.trim().to_string(), value.trim().to_string()));
            }
            "-d" => curl.data = words.next().cloned(),
            flags if flags.starts_with('-') => {
                assert!(
                    flags.chars().skip(1).all(|f| matches!(f, 's' | 'N')),
                    "a curl flag this test does not know: {flags}"
                );
            }
            url => curl.url = url.to_string(),
        }
    }
    curl
}

async fn paper_gateway() -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    assert!(
        config.broker.url.is_none(),
        "the embedded paper broker, as in the README"
    );
    let gateway = Gateway::bind(config).await.expect("the gateway starts");
    let addr = gateway.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.run(async {
        let _ = stopped.await;
    }));
    (format!("127.0.0.1:{}", addr.port()), stop)
}

#[tokio::test]
async fn the_readmes_curl_commands_work_as_pasted() {
    let (addr, _stop) = paper_gateway().await;
    let http = reqwest::Client::new();
    let commands: Vec<Curl> = blocks("sh")
        .iter()
        .map(|b| shell_words(b))
        .filter(|w| w.first().is_some_and(|w| w == "curl"))
        .map(|w| curl(&w))
        .collect();
    assert!(
        commands.len() >= 2,
        "the README's curl commands: {commands:?}"
    );
    for command in commands {
        let url = command.url.replace("localhost:8080", &addr);
        let url = if url.starts_with("http") {
            url
        } else {
            format!("http://{url}")
        };
        let mut request = match &command.data {
            Some(data) => http.post(&url).body(data.clone()),
            None => http.get(&url),
        };
        for (name, value) in &command.headers {
            request = request.header(name, value);
        }
        let streaming = command
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("accept") && v == "text/event-stream");
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{command:?}");
        if streaming {
            // A subscription: the stream is open; it ends when the client goes.
            let content_type = response.headers()["content-type"].to_str().unwrap();
            assert!(
                content_type.starts_with("text/event-stream"),
                "{content_type}"
            );
            continue;
        }
        let body: Value = response.json().await.unwrap();
        assert!(body.get("errors").is_none(), "{command:?}: {body}");
        assert!(body["data"]["account"]["cash"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn the_readmes_graphql_examples_work_as_pasted_and_the_order_is_placed_once() {
    let (addr, _stop) = paper_gateway().await;
    let http = reqwest::Client::new();
    let run = |query: String| {
        let http = http.clone();
        let url = format!("http://{addr}/graphql");
        async move {
            let body: Value = http
                .post(url)
                .json(&json!({ "query": query }))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body
        }
    };
    let examples = blocks("graphql");
    assert!(examples.len() >= 2, "{examples:?}");
    for example in &examples {
        let body = run(example.clone()).await;
        assert!(body.get("errors").is_none(), "{example}\n{body}");
        if let Some(submit) = body["data"].get("submitOrder") {
            assert_eq!(submit["userErrors"], json!([]), "{example}\n{body}");
            assert!(submit["order"]["id"].is_string(), "{body}");
            // Retried with the same idempotency key: the same order, replayed.
            let again = run(example.clone()).await;
            assert_eq!(again["data"]["submitOrder"]["replayed"], true, "{again}");
            assert_eq!(
                again["data"]["submitOrder"]["order"]["id"],
                submit["order"]["id"]
            );
        }
    }
    assert!(
        examples.iter().any(|e| e.contains("submitOrder")),
        "the README shows an order"
    );
}

#[test]
fn shell_words_read_quotes_and_continuations_as_sh_does() {
    let words = shell_words("curl -s a \\\n  -H 'x: \"y\"' -d \"{\\\"q\\\": 1}\" # note\n");
    assert_eq!(
        words,
        ["curl", "-s", "a", "-H", "x: \"y\"", "-d", "{\"q\": 1}"]
    );
}
