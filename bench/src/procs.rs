//! The processes a run starts: the mock, the gate and a peer, each pinned
//! to its core with `taskset`, and the memory readings taken from them.

use crate::client::{call, get};
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The gate runs alone on this core...
pub const GATE_CORE: usize = 0;
/// ...and the mock and the load client share this one.
pub const LOAD_CORE: usize = 1;

pub fn online_cores() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// Pins the calling thread, and every thread it starts later, to `core`.
pub fn pin_current_thread(core: usize) -> anyhow::Result<()> {
    // SAFETY: the set is zeroed, then one bit set, then read by the kernel;
    // pid 0 means the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("could not pin the load client to core {core}: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A child process that is stopped when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then SIGKILL if it has not gone within five seconds.
    pub fn stop(&mut self) {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Resident memory of `pid` in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn pinned(core: usize, program: &Path) -> Command {
    let mut c = Command::new("taskset");
    c.arg("-c").arg(core.to_string()).arg(program);
    c
}

/// The mock, this same binary's `mock` command, on the load core.
pub fn start_mock() -> anyhow::Result<(Proc, SocketAddr)> {
    let exe = std::env::current_exe()?;
    let mut child = pinned(LOAD_CORE, &exe)
        .args(["mock", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the mock")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let addr =
        line.trim().rsplit(' ').next().unwrap_or_default().parse().context("the mock's address line")?;
    Ok((Proc { child }, addr))
}

/// A running gate and the ports it announced.
pub struct GateProc {
    pub proc: Proc,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub ready_after: Duration,
}

pub struct GateSetup {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub database_url: String,
    pub upstream: SocketAddr,
    /// `?slots=N` on `OLLAMA_URL`: the requests per model the gate lets the
    /// upstream run at once. Gates without the fair queue do not understand it.
    pub upstream_slots: Option<u32>,
}

pub const ADMIN_PASSWORD: &str = "bench-admin-password";

/// Slots per model for backends without `?slots=`: far more than any lane
/// sends at once, so the gate's fair queue never holds back a request in the
/// throughput and latency lanes. Gates without the queue ignore the setting.
pub const UNTHROTTLED_SLOTS: &str = "4096";

/// Starts the gate on its core and waits until `/health` answers 200,
/// timing spawn to ready.
pub async fn start_gate(setup: &GateSetup, log_name: &str) -> anyhow::Result<GateProc> {
    let log_path = setup.dir.join(log_name);
    let log = std::fs::File::create(&log_path)?;
    let started = Instant::now();
    let child = pinned(GATE_CORE, &setup.bin)
        .arg("serve")
        .current_dir(&setup.dir)
        .env_clear()
        .env("PROXY_HOST", "127.0.0.1")
        .env("PROXY_PORT", "0")
        .env("ADMIN_PORT", "0")
        .env("DATABASE_URL", &setup.database_url)
        .env("OLLAMA_URL", upstream_url(setup))
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("LOG_FILE", "logs/usage.log")
        // Every load client connects from 127.0.0.1, far past one address's default share.
        .env("MAX_CONNECTIONS_PER_ADDRESS", "0")
        .env("BACKEND_DEFAULT_SLOTS", UNTHROTTLED_SLOTS)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting the gate")?;
    let mut proc = Proc { child };
    let mut ports = None;
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the gate exited with {status}:\n{log}");
        }
        match ports {
            None => ports = announced(&std::fs::read_to_string(&log_path).unwrap_or_default()),
            Some((proxy, admin)) => {
                if let Ok((200, _)) = call(proxy, &get(proxy, "/health", None)).await {
                    let ready_after = started.elapsed();
                    return Ok(GateProc { proc, proxy, admin, ready_after });
                }
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the gate was not ready within 30 s; see {}", log_path.display());
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

fn upstream_url(setup: &GateSetup) -> String {
    match setup.upstream_slots {
        Some(n) => format!("http://{}?slots={n}", setup.upstream),
        None => format!("http://{}", setup.upstream),
    }
}

/// The proxy's and the admin's addresses, once the gate has announced them.
fn announced(log: &str) -> Option<(SocketAddr, SocketAddr)> {
    let (proxy, admin) = ollama_gate::cli::announced_addresses(log)?;
    Some((proxy.parse().ok()?, admin.parse().ok()?))
}

/// How to tell that a started process serves: `GET path` answers 200.
struct Ready {
    name: &'static str,
    path: &'static str,
    within: Duration,
}

impl Ready {
    /// Waits for it, or fails naming the log, if it exits or takes too long.
    async fn wait(&self, mut proc: Proc, addr: SocketAddr, log: &Path) -> anyhow::Result<Proc> {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = proc.child.try_wait() {
                bail!("{} exited with {status}; see {}", self.name, log.display());
            }
            if let Ok((200, _)) = call(addr, &get(addr, self.path, None)).await {
                return Ok(proc);
            }
            if started.elapsed() > self.within {
                bail!(
                    "{} was not ready within {} s; see {}",
                    self.name,
                    self.within.as_secs(),
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// LiteLLM's proxy from PyPI, in a virtualenv of its own under `target/bench`.
pub fn install_litellm(root: &Path) -> anyhow::Result<PathBuf> {
    let venv = root.join("litellm-venv");
    let bin = venv.join("bin/litellm");
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!("installing LiteLLM into {} (once)", venv.display());
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "litellm[proxy]",
    ]))?;
    Ok(bin)
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

pub const LITELLM_KEY: &str = "sk-bench-litellm";

/// LiteLLM's proxy with one worker and no database, on the gate's core,
/// sending every model to the mock's OpenAI-compatible routes.
pub async fn start_litellm(
    bin: &Path,
    dir: &Path,
    upstream: SocketAddr,
) -> anyhow::Result<(Proc, SocketAddr)> {
    let config = dir.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: \"*\"\n    litellm_params:\n      model: \"openai/*\"\n      api_base: \"http://{upstream}/v1\"\n      api_key: \"none\"\ngeneral_settings:\n  master_key: \"{LITELLM_KEY}\"\nlitellm_settings:\n  telemetry: false\n"
        ),
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let log = std::fs::File::create(dir.join("litellm.log"))?;
    let child = pinned(GATE_CORE, bin)
        .args(["--config"])
        .arg(&config)
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--num_workers", "1"])
        .current_dir(dir)
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_LOG", "ERROR")
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting LiteLLM")?;
    let ready = Ready { name: "LiteLLM", path: "/health/liveliness", within: Duration::from_secs(120) };
    let proc = ready.wait(Proc { child }, addr, &dir.join("litellm.log")).await?;
    Ok((proc, addr))
}

/// nginx from the system (Debian's `nginx-light`): `nginx` on the `PATH`, or
/// where Debian puts it.
pub fn find_nginx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from("/usr/sbin/nginx")]).find(|p| p.is_file())
}

/// nginx's configuration as a plain reverse proxy to `upstream`: one worker,
/// kept-alive upstream connections, nothing buffered, nothing logged per
/// request. Every path it writes lies under `dir`.
pub fn nginx_config(dir: &Path, listen: SocketAddr, upstream: SocketAddr) -> String {
    let d = dir.display();
    format!(
        "daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/nginx-temp/body;
    proxy_temp_path {d}/nginx-temp/proxy;
    fastcgi_temp_path {d}/nginx-temp/fastcgi;
    uwsgi_temp_path {d}/nginx-temp/uwsgi;
    scgi_temp_path {d}/nginx-temp/scgi;
    keepalive_requests 1000000;
    upstream mock {{
        server {upstream};
        keepalive 256;
        keepalive_requests 1000000;
    }}
    server {{
        listen {listen} reuseport backlog=4096;
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}
"
    )
}

/// nginx as a plain reverse proxy to the mock, on the gate's core: the
/// physical anchor, a proxy that does nothing but forward.
pub async fn start_nginx(bin: &Path, dir: &Path, upstream: SocketAddr) -> anyhow::Result<(Proc, SocketAddr)> {
    std::fs::create_dir_all(dir.join("nginx-temp"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let config = dir.join("nginx.conf");
    std::fs::write(&config, nginx_config(dir, addr, upstream))?;
    let log = std::fs::File::create(dir.join("nginx.log"))?;
    let child = pinned(GATE_CORE, bin)
        .arg("-c")
        .arg(&config)
        // Its own prefix, so that it reads and writes nothing of the system's.
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting nginx")?;
    let ready = Ready { name: "nginx", path: "/api/version", within: Duration::from_secs(10) };
    let proc = ready.wait(Proc { child }, addr, &dir.join("nginx-error.log")).await?;
    Ok((proc, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_gate_given_slots_gets_them_on_its_upstream_url() {
        let mut setup = GateSetup {
            bin: PathBuf::new(),
            dir: PathBuf::new(),
            database_url: String::new(),
            upstream: "127.0.0.1:9001".parse().unwrap(),
            upstream_slots: None,
        };
        assert_eq!(upstream_url(&setup), "http://127.0.0.1:9001");
        setup.upstream_slots = Some(4);
        assert_eq!(upstream_url(&setup), "http://127.0.0.1:9001?slots=4");
    }

    #[test]
    fn nginx_is_a_plain_proxy_that_keeps_upstream_connections_and_buffers_nothing() {
        let c = nginx_config(
            Path::new("/run/x"),
            "127.0.0.1:9000".parse().unwrap(),
            "127.0.0.1:9001".parse().unwrap(),
        );
        for line in [
            "worker_processes 1;",
            "server 127.0.0.1:9001;",
            "keepalive 256;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_buffering off;",
            "proxy_request_buffering off;",
            "listen 127.0.0.1:9000",
            "access_log off;",
        ] {
            assert!(c.contains(line), "{line} missing from:\n{c}");
        }
        // Nothing outside the run's folder.
        for path in c.split_whitespace().filter(|w| w.starts_with('/') && *w != "/") {
            assert!(path.starts_with("/run/x/"), "{path}");
        }
    }
}
