//! The indexer against a secured Elasticsearch (the fault proxy demanding one `Authorization` header): basic
//! credentials and an API key, read from files as mounted Secrets are, go with every request; wrong credentials
//! stop the indexer at start with the server's answer, before it consumes or commits anything.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::fault_proxy::{FaultProxy, Faults};
use support::indexer as ix;

const RECORDS: u64 = 300;

#[test]
fn basic_credentials_and_api_keys_from_files_go_with_every_request() {
    let tmp = tempfile::tempdir().unwrap();
    let password = secret_file(tmp.path(), "password", "s3cret: with spaces\n");
    let key = secret_file(tmp.path(), "api-key", "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw\n");
    let cases = [
        (
            format!("{{type: basic, username: logpipe, password: \"${{file:{password}}}\"}}"),
            format!("Basic {}", base64("logpipe:s3cret: with spaces")),
        ),
        (
            format!("{{type: api_key, id: indexer-1, key: \"${{file:{key}}}\"}}"),
            format!("ApiKey {}", base64("indexer-1:VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw")),
        ),
    ];
    for (i, (auth, header)) in cases.into_iter().enumerate() {
        let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-auth", 1);
        let proxy = FaultProxy::start(&es_url, secured(header), 1);
        let dir = tmp.path().join(format!("case-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = config_with_auth(&dir, &names, &bootstrap, &proxy.url, &auth);
        ix::produce(&ix::producer(&bootstrap), &names.topic, (0..RECORDS).map(ix::document));
        let log = dir.join("indexer.log");
        let mut indexer = ix::start_indexer(&config, &log);
        let es = ix::elasticsearch(&es_url);
        let got = ix::wait_for_count(&es, &names.indices(), RECORDS, Duration::from_secs(60));
        unsafe { libc::kill(indexer.id() as i32, libc::SIGTERM) };
        let status = indexer.wait().unwrap();
        support::print_log_tail(&log);
        assert!(status.success(), "{auth}: indexer exited with {status}");
        assert_eq!(got, RECORDS, "{auth}: documents indexed");
        let refused = proxy.stats.unauthorized.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(refused, 0, "{auth}: requests without the credentials");
    }
}

#[test]
fn wrong_credentials_stop_the_indexer_at_start_and_commit_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ix::Setup { bootstrap, es_url, names } = ix::Setup::new("ix-auth-wrong", 1);
    let proxy = FaultProxy::start(&es_url, secured(format!("Basic {}", base64("logpipe:right"))), 1);
    let config = config_with_auth(
        tmp.path(),
        &names,
        &bootstrap,
        &proxy.url,
        "{type: basic, username: logpipe, password: wrong}",
    );
    ix::produce(&ix::producer(&bootstrap), &names.topic, (0..RECORDS).map(ix::document));
    let log = tmp.path().join("indexer.log");
    let mut indexer = ix::start_indexer(&config, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = indexer.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the indexer kept running with wrong credentials");
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(text.contains("401"), "the error names the server's answer: {text}");
    assert_eq!(ix::count(&ix::elasticsearch(&es_url), &names.indices()), 0);
    let committed = ix::committed(&bootstrap, &names.group, &names.topic, 1);
    assert!(committed.iter().all(|&offset| offset < 0), "nothing committed: {committed:?}");
}

fn secured(header: String) -> Faults {
    Faults { authorization: Some(Box::leak(header.into_boxed_str())), ..Faults::default() }
}

fn secret_file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

/// The shared test config with `elasticsearch.auth` set to `auth` (YAML flow mapping).
fn config_with_auth(dir: &Path, names: &ix::Names, bootstrap: &str, url: &str, auth: &str) -> PathBuf {
    let path = ix::write_config(dir, names, "indexer-1", bootstrap, url, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen("elasticsearch:\n", &format!("elasticsearch:\n  auth: {auth}\n"), 1);
    std::fs::write(&path, text).unwrap();
    path
}

/// Standard base64 with padding, as HTTP authentication headers carry credentials.
fn base64(input: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.as_bytes().chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..4 {
            let c = if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' };
            out.push(c);
        }
    }
    out
}
