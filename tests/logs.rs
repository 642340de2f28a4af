//! What the real binary writes at `RUST_LOG=trace`: never a key, a prompt or
//! a password, and a client's malformed request is never an ERROR.

use testkit::{gate, mock_ollama};

use gate::*;
use mock_ollama::MockOllama;
use serde_json::{json, Value};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

const PROMPT: &str = "zebra-quartz-prompt-7781 tell me about lighthouses";
const WRONG_PASSWORD: &str = "wrong-admin-password-5512";

struct Ports {
    proxy: String,
    admin: String,
}

async fn wait_for_ports(log: &std::path::Path, child: &mut std::process::Child) -> Ports {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some((proxy, admin)) = ollama_gate::cli::announced_addresses(&text) {
            return Ports { proxy: format!("http://{proxy}"), admin: format!("http://{admin}") };
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the gate exited early with {status}:\n{text}");
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the gate did not start");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn call(req: awc::ClientRequest, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
    let mut response = match body {
        Some(b) => req.send_body(b).await,
        None => req.send().await,
    }
    .expect("the gate answers");
    let body = response.body().limit(1 << 24).await.unwrap_or_default().to_vec();
    (response.status().as_u16(), body)
}

/// Bytes that are not HTTP at all, on a raw connection.
fn raw(addr: &str, bytes: &[u8]) {
    let addr = addr.trim_start_matches("http://");
    if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = stream.write_all(bytes);
        let mut sink = [0u8; 1024];
        let _ = std::io::Read::read(&mut stream, &mut sink);
    }
}

#[actix_web::test]
async fn trace_logs_carry_no_secret_and_bad_requests_are_not_errors() {
    let mock = MockOllama::start().await;
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path(), &mock.url);
    let (out_path, err_path) = (dir.path().join("stdout.log"), dir.path().join("stderr.log"));
    let mut child = gate
        .command()
        .env("RUST_LOG", "trace")
        .env("ADMIN_PASSWORD", PASSWORD)
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap();
    let ports = wait_for_ports(&err_path, &mut child).await;
    let client = awc::Client::builder().disable_redirects().timeout(Duration::from_secs(30)).finish();
    let admin = |method: &str, path: &str, password: &str| {
        client
            .request(
                awc::http::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/api{path}", ports.admin),
            )
            .insert_header(("authorization", format!("Bearer {password}")))
            .insert_header(("content-type", "application/json"))
    };

    let (status, body) =
        call(admin("POST", "/api-keys", PASSWORD), Some(json!({"name": "logs"}).to_string().into_bytes()))
            .await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let key = serde_json::from_slice::<Value>(&body).unwrap()["key"].as_str().unwrap().to_owned();
    let proxy = |path: &str| {
        client
            .post(format!("{}{path}", ports.proxy))
            .insert_header(("authorization", format!("Bearer {key}")))
            .insert_header(("content-type", "application/json"))
    };

    // Good requests carrying the prompt, streamed and not, on each API.
    for (path, body) in [
        ("/api/generate", json!({"model": "llama3.2", "prompt": PROMPT, "stream": false})),
        ("/api/generate", json!({"model": "llama3.2", "prompt": PROMPT, "stream": true})),
        ("/api/chat", json!({"model": "llama3.2", "messages": [{"role": "user", "content": PROMPT}]})),
        (
            "/v1/chat/completions",
            json!({"model": "llama3.2", "messages": [{"role": "user", "content": PROMPT}]}),
        ),
    ] {
        let (status, _) = call(proxy(path), Some(body.to_string().into_bytes())).await;
        assert_eq!(status, 200, "{path}");
    }
    // Malformed bodies, with the prompt inside them.
    let broken = format!("{{\"model\": \"llama3.2\", \"prompt\": \"{PROMPT}\"");
    for body in [broken.into_bytes(), vec![0xff, 0xfe, b'{'], format!("[\"{PROMPT}\"]").into_bytes()] {
        let (status, _) = call(proxy("/api/generate"), Some(body)).await;
        assert!((400..500).contains(&status), "a client error: {status}");
    }
    // The key where it is not accepted, and a wrong one.
    let (status, _) = call(client.get(format!("{}/api/tags?api_key={key}", ports.proxy)), None).await;
    assert_eq!(status, 401);
    let (status, _) = call(
        client
            .get(format!("{}/api/tags", ports.proxy))
            .insert_header(("authorization", format!("Bearer {key}x"))),
        None,
    )
    .await;
    assert_eq!(status, 401);
    // Wrong and right admin passwords, by the bearer and the console.
    assert_eq!(call(admin("GET", "/api-keys", WRONG_PASSWORD), None).await.0, 401);
    let (status, _) =
        call(admin("POST", "/api-keys", PASSWORD), Some(format!("{{\"name\": \"{PROMPT}").into_bytes()))
            .await;
    assert_eq!(status, 400, "malformed admin JSON");
    let login = client.get(format!("{}/login", ports.admin)).send().await.unwrap();
    let cookie =
        login.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = String::from_utf8_lossy(
        &call(client.get(format!("{}/login", ports.admin)).insert_header(("cookie", cookie.clone())), None)
            .await
            .1,
    )
    .into_owned();
    let at = page.find("name=\"csrf_token\" value=\"").unwrap() + 25;
    let csrf = page[at..at + page[at..].find('"').unwrap()].to_owned();
    for (password, expected) in [(WRONG_PASSWORD, 401), (PASSWORD, 303)] {
        let req = client
            .post(format!("{}/login", ports.admin))
            .insert_header(("cookie", cookie.clone()))
            .insert_header(("content-type", "application/x-www-form-urlencoded"));
        let (status, _) =
            call(req, Some(format!("csrf_token={csrf}&password={password}").into_bytes())).await;
        assert_eq!(status, expected);
    }
    // Not HTTP at all, and a header block cut short.
    raw(&ports.proxy, b"GARBAGE \x00\x01 nonsense\r\n\r\n");
    raw(&ports.proxy, format!("POST /api/generate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Length: 5\r\n\r\n{{").as_bytes());
    raw(&ports.admin, format!("GET /api/api-keys HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {WRONG_PASSWORD}\r\nBad Header\r\n\r\n").as_bytes());

    kill(&child, 15);
    wait_exit(&mut child, Duration::from_secs(15)).await;
    let mut output = std::fs::read(&out_path).unwrap();
    output.extend(std::fs::read(&err_path).unwrap());
    let text = String::from_utf8_lossy(&output);
    assert!(text.lines().count() > 20, "trace logging was on:\n{text}");
    assert!(text.contains("TRACE") || text.contains("DEBUG"), "trace logging was on");
    for (what, secret) in [
        ("the key", key.as_str()),
        ("the prompt", "zebra-quartz-prompt-7781"),
        ("the admin password", PASSWORD),
        ("a wrong password", WRONG_PASSWORD),
    ] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(lines.is_empty(), "{what} is in the log:\n{}", lines.join("\n"));
    }
    let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "ERROR lines for client mistakes:\n{}", errors.join("\n"));
}
