//! Only the headers a client needs pass from the upstream; the gate's own CORS
//! policy is the one that applies.

use crate::helpers::{send, spawn_app_with, Options, Reply};
use awc::http::StatusCode;
use serde_json::json;

/// Headers no upstream answer may hand to the client.
const NEVER_PASSED: &[&str] = &[
    "set-cookie",
    "server",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "strict-transport-security",
    "proxy-authenticate",
    "keep-alive",
    "x-powered-by",
    "alt-svc",
];

fn assert_filtered(reply: &Reply, what: &str) {
    for name in NEVER_PASSED {
        assert!(reply.headers.get(*name).is_none(), "{what}: the upstream's {name} reached the client");
    }
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"), "{what}: a needed header is kept");
}

#[actix_web::test]
async fn the_upstreams_cookies_server_cors_and_hsts_headers_never_reach_the_client() {
    let app = spawn_app_with(Options {
        env: vec![("ALLOWED_ORIGINS", "https://app.example".into())],
        ..Options::default()
    })
    .await;
    app.mock.add_response_headers(&[
        ("set-cookie", "upstream_session=secret; Path=/"),
        ("server", "internal-ollama/0.12.6 (10.0.0.7)"),
        ("access-control-allow-origin", "*"),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-headers", "*"),
        ("access-control-expose-headers", "set-cookie"),
        ("strict-transport-security", "max-age=63072000; includeSubDomains; preload"),
        ("proxy-authenticate", "Basic realm=\"internal\""),
        ("keep-alive", "timeout=600"),
        ("x-powered-by", "internal"),
        ("alt-svc", "h3=\":443\""),
        ("cache-control", "no-store"),
    ]);
    let (key, _) = app.create_key(json!({"name": "headers"})).await;

    let listing = app.get("/api/tags", Some(&key)).await;
    assert_eq!(listing.status, StatusCode::OK);
    assert_filtered(&listing, "a listing");

    let streamed = app
        .post("/api/generate", Some(&key), json!({"model": "llama3", "prompt": "hi", "stream": true}))
        .await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert_filtered(&streamed, "a stream");
    assert_eq!(streamed.header("content-type").as_deref(), Some("application/x-ndjson"));

    let chat = app
        .post(
            "/v1/chat/completions",
            Some(&key),
            json!({"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_filtered(&chat, "an OpenAI answer");

    // The gate's CORS policy: its own origin list, not the upstream's "*".
    let from_app = send(
        app.proxy_request("GET", "/api/tags", Some(&key)).insert_header(("origin", "https://app.example")),
        None,
    )
    .await;
    assert_eq!(from_app.header("access-control-allow-origin").as_deref(), Some("https://app.example"));
    assert!(from_app.header("access-control-allow-credentials").is_none());
    let foreign = send(
        app.proxy_request("GET", "/api/tags", Some(&key)).insert_header(("origin", "https://evil.example")),
        None,
    )
    .await;
    assert!(foreign.header("access-control-allow-origin").is_none(), "a foreign origin gets no CORS grant");
}

/// An upstream that answers every request with `response`, then closes.
async fn raw_upstream(response: &'static str) -> String {
    crate::raw::upstream(move |stream| async move {
        // Dropping the stream closes the connection, as `Connection: close` says.
        let _ = crate::raw::write_all(&stream, response.as_bytes()).await;
    })
    .await
}

#[actix_web::test]
async fn hop_by_hop_headers_and_those_named_in_connection_are_removed() {
    let upstream = raw_upstream(
        "HTTP/1.1 200 OK\r\n\
         Content-Type: application/json\r\n\
         Connection: close, X-Backend-Node, Expires\r\n\
         X-Backend-Node: gpu-7.internal\r\n\
         Expires: Thu, 01 Jan 2026 00:00:00 GMT\r\n\
         Keep-Alive: timeout=5, max=100\r\n\
         Proxy-Authenticate: Basic realm=\"internal\"\r\n\
         Trailer: Expires\r\n\
         Upgrade: h2c\r\n\
         Cache-Control: no-store\r\n\
         Content-Length: 13\r\n\
         \r\n\
         {\"models\":[]}",
    )
    .await;
    let app = spawn_app_with(Options { upstream: Some(upstream), ..Options::default() }).await;
    let (key, _) = app.create_key(json!({"name": "hops"})).await;
    let reply = app.get("/api/tags", Some(&key)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "{\"models\":[]}");
    for name in ["x-backend-node", "expires", "keep-alive", "proxy-authenticate", "trailer", "upgrade"] {
        assert!(reply.headers.get(name).is_none(), "the upstream's {name} reached the client");
    }
    // What `Connection` names is dropped even where it would otherwise pass.
    assert_eq!(reply.header("cache-control").as_deref(), Some("no-store"));
    assert_ne!(reply.header("connection").as_deref(), Some("close, X-Backend-Node, Expires"));
}
