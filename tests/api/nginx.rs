//! The console through the shipped deploy/nginx.conf, with a real nginx on
//! loopback. Only the upstream addresses and the listen ports are rewritten;
//! every header nginx sets is the file's own.

use crate::helpers::*;
use awc::http::StatusCode;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `text` with `from` replaced, which must occur exactly once: if the shipped
/// file changes shape, this test must notice rather than test something else.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "deploy/nginx.conf should contain '{from}' once");
    text.replacen(from, to, 1)
}

struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nginx(binary: &Path, proxy_port: u16, admin_port: u16) -> (Nginx, u16) {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf")).unwrap();
    let (front_proxy, front_admin) = (free_port(), free_port());
    let site =
        replace_once(&shipped, "server ollama-gate-pg:8000;", &format!("server 127.0.0.1:{proxy_port};"));
    let site = replace_once(&site, "server ollama-gate-pg:8001;", &format!("server 127.0.0.1:{admin_port};"));
    let site = replace_once(&site, "listen 8000;", &format!("listen 127.0.0.1:{front_proxy};"));
    let site = replace_once(&site, "listen 8001;", &format!("listen 127.0.0.1:{front_admin};"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().display();
    std::fs::write(dir.path().join("site.conf"), site).unwrap();
    // What the nginx image wraps around conf.d/default.conf, in a private prefix.
    let main = format!(
        "daemon off;\nmaster_process off;\npid {p}/nginx.pid;\nerror_log {p}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
         fastcgi_temp_path {p}/fastcgi;\n  uwsgi_temp_path {p}/uwsgi;\n  scgi_temp_path {p}/scgi;\n\
         include {p}/site.conf;\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
    let child = Command::new(binary)
        .args(["-p", &p.to_string(), "-e", &format!("{p}/error.log"), "-c", &format!("{p}/nginx.conf")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut nginx = Nginx { child, dir };
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", front_admin)).is_err() {
        if let Ok(Some(status)) = nginx.child.try_wait() {
            let log = std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
            panic!("nginx exited with {status}:\n{log}");
        }
        assert!(started.elapsed() < Duration::from_secs(10), "nginx did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    (nginx, front_admin)
}

fn client_from(from: &str) -> awc::Client {
    let ip: IpAddr = from.parse().unwrap();
    awc::Client::builder()
        .connector(awc::Connector::new().limit(0).local_address(ip))
        .disable_redirects()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// Logs in as a browser does: the form, then a POST carrying its Origin.
async fn browser_login(client: &awc::Client, base: &str, password: &str) -> (Reply, Option<String>) {
    let form = send(client.get(format!("{base}/login")), None).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text());
    let cookie = form.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_owned();
    let body = form.text();
    let at = body.find("name=\"csrf_token\" value=\"").unwrap() + 25;
    let csrf = &body[at..at + body[at..].find('"').unwrap()];
    let req = client
        .post(format!("{base}/login"))
        .insert_header(("cookie", cookie))
        .insert_header(("origin", base.to_owned()))
        .insert_header(("sec-fetch-site", "same-origin"))
        .insert_header(("content-type", "application/x-www-form-urlencoded"));
    let reply = send(req, Some(format!("csrf_token={csrf}&password={password}").into_bytes())).await;
    let session = reply.header("set-cookie").map(|c| c.split(';').next().unwrap().to_owned());
    (reply, session)
}

#[actix_web::test]
async fn the_console_works_through_the_shipped_nginx_config() {
    let Some(binary) = nginx_binary() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("nginx is not installed; .ci/run installs it (apt-get install -y nginx)");
        }
        println!("skipped: nginx is not installed (apt-get install -y nginx)");
        return;
    };
    let app = spawn_app_with(Options {
        env: vec![("TRUSTED_PROXIES", "127.0.0.1".into()), ("LOGIN_MAX_FAILURES", "3".into())],
        ..Options::default()
    })
    .await;
    let port = |url: &str| url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let (_nginx, front) = start_nginx(&binary, port(&app.proxy), port(&app.admin));
    let base = format!("http://127.0.0.1:{front}");

    // Someone at 127.0.0.2 guesses until locked out; nginx names them to the gate.
    let attacker = client_from("127.0.0.2");
    for _ in 0..3 {
        assert_eq!(browser_login(&attacker, &base, "guess").await.0.status, StatusCode::UNAUTHORIZED);
    }
    let (locked, _) = browser_login(&attacker, &base, ADMIN_PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.header("retry-after").is_some());

    // The admin at 127.0.0.1, through the same nginx: the Origin matches the
    // forwarded Host (port included), and the lockout is someone else's.
    let admin = client_from("127.0.0.1");
    let (reply, session) = browser_login(&admin, &base, ADMIN_PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
    assert_eq!(reply.header("location").as_deref(), Some("/"));
    let dashboard =
        send(admin.get(format!("{base}/")).insert_header(("cookie", session.expect("a new session"))), None)
            .await;
    assert_eq!(dashboard.status, StatusCode::OK, "logged in through nginx");
    assert!(dashboard.text().contains("csrf_token"), "the console page");

    // A rebinding page's Host passes through nginx and is refused by the gate.
    let foreign =
        send(admin.get(format!("{base}/login")).insert_header(("host", "evil.example")), None).await;
    assert_eq!(foreign.status, StatusCode::MISDIRECTED_REQUEST);
}
