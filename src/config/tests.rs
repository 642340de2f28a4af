use super::*;

fn with(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn defaults_match_the_contract() {
    let s = with(&[]).unwrap();
    assert_eq!((s.proxy_host.as_str(), s.proxy_port), ("0.0.0.0", 8000));
    assert_eq!((s.admin_host.as_str(), s.admin_port), ("127.0.0.1", 8001));
    assert_eq!(s.database_url, DatabaseUrl::Sqlite { path: "data/ollama-gate.db".into() });
    assert_eq!(s.backends[0].url.as_str(), "http://localhost:11434/");
    assert_eq!(s.body_limit, 32 * 1024 * 1024);
    assert_eq!(s.cookie_secure, CookieSecure::Auto);
    assert!(!s.allow_key_in_query && !s.allow_key_in_body);
}

#[test]
fn each_invalid_setting_is_named_in_the_error() {
    for (name, value) in [
        ("APP_TZ", "Mars/Olympus"),
        ("PROXY_PORT", "eighty"),
        ("OLLAMA_URL", "ftp://x"),
        ("DATABASE_URL", "mysql://x"),
        ("COOKIE_SECURE", "maybe"),
        ("SESSION_KEY", "c2hvcnQ="),
        ("TRUSTED_PROXIES", "10.0.0.0/40"),
        ("ADMIN_ALLOWED_HOSTS", " , "),
    ] {
        let err = with(&[(name, value)]).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn sqlite_urls_in_both_spellings() {
    assert_eq!(
        DatabaseUrl::parse("sqlite:///./x.db").unwrap(),
        DatabaseUrl::Sqlite { path: "./x.db".into() }
    );
    assert_eq!(
        DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
        DatabaseUrl::Sqlite { path: "/tmp/x.db".into() }
    );
    assert!(matches!(DatabaseUrl::parse("postgresql://u@h/db").unwrap(), DatabaseUrl::Postgres { .. }));
}

#[test]
fn image_fetch_bounds_have_defaults_and_are_named_when_invalid() {
    let s = with(&[]).unwrap();
    assert_eq!((s.image_fetch_max_bytes, s.image_fetch_max_total_bytes), (20 << 20, 32 << 20));
    assert_eq!((s.image_fetch_max_images, s.image_fetch_max_in_flight), (16, 8));
    assert_eq!(s.image_fetch_queue_wait, Duration::from_secs(2));
    assert_eq!(with(&[("IMAGE_FETCH_MAX_IN_FLIGHT", "0")]).unwrap().image_fetch_max_in_flight, 1);
    for name in ["IMAGE_FETCH_MAX_TOTAL_BYTES", "IMAGE_FETCH_MAX_IMAGES", "IMAGE_FETCH_QUEUE_WAIT_MS"] {
        let err = with(&[(name, "lots")]).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn several_upstreams_are_a_comma_separated_list() {
    let s = with(&[("OLLAMA_URL", "http://a:11434, http://b:11434")]).unwrap();
    assert_eq!(s.backends.len(), 2);
    assert_eq!((s.backends[0].slots, s.queue_max_per_key), (1, 64));
    let s = with(&[("OLLAMA_URL", "http://a?slots=3"), ("BACKEND_DEFAULT_SLOTS", "9")]).unwrap();
    assert_eq!(s.backends[0].slots, 3);
    assert!(with(&[("BACKEND_DEFAULT_SLOTS", "0")]).is_err());
    assert!(with(&[("OLLAMA_URL", "http://a?slot=3")]).is_err());
}

#[test]
fn the_readme_lists_every_setting() {
    let readme = include_str!("../../README.md");
    for (name, _, _) in SETTINGS {
        assert!(readme.contains(&format!("`{name}`")), "README.md does not list {name}");
    }
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let s = with(&[
        ("ADMIN_PASSWORD", "hunter2-admin"),
        ("OLLAMA_API_KEYS", "upstream-secret-1"),
        ("SESSION_KEY", &key),
        ("METRICS_TOKEN", "metrics-secret-9"),
    ])
    .unwrap();
    let shown = format!("{s:?}");
    for secret in ["hunter2-admin", "upstream-secret-1", key.as_str(), "metrics-secret-9"] {
        assert!(!shown.contains(secret), "{secret} shows in {shown}");
    }
    assert_eq!(s.admin_password.as_ref().map(|p| p.expose().as_str()), Some("hunter2-admin"));
}

#[test]
fn an_unknown_setting_in_the_file_stops_startup_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    std::fs::write(&path, "admin_prot = 9000\n").unwrap();
    let e = format!("{:#}", Settings::load(Some(&path)).unwrap_err());
    assert!(e.contains("unknown setting 'ADMIN_PROT'") && e.contains("did you mean ADMIN_PORT?"), "{e}");

    std::fs::write(&path, "colour = \"blue\"\n").unwrap();
    let e = format!("{:#}", Settings::load(Some(&path)).unwrap_err());
    assert!(e.contains("unknown setting 'COLOUR'") && e.contains("--help"), "{e}");

    std::fs::write(&path, "app_tz = \"Europe/Berlin\"\nBODY_LIMIT = 1024\n").unwrap();
    let s = Settings::load(Some(&path)).unwrap();
    assert_eq!(s.body_limit, 1024);
}

#[test]
fn edit_distance_counts_single_edits() {
    assert_eq!(super::edit_distance("ADMIN_PORT", "ADMIN_PORT"), 0);
    assert_eq!(super::edit_distance("ADMIN_PORT", "ADMIN_PROT"), 2);
    assert_eq!(super::edit_distance("APP_TZ", "APP_T"), 1);
    assert_eq!(super::edit_distance("", "ABC"), 3);
}

#[test]
fn the_alert_webhook_is_http_and_its_token_stays_out_of_errors_and_debug() {
    assert!(with(&[]).unwrap().alert_webhook_url.is_none());
    let s = with(&[("ALERT_WEBHOOK_URL", "https://hooks.example/T0/s3cr3t"), ("ALERT_WEBHOOK_SECRET", "k")])
        .unwrap();
    assert_eq!(s.alert_webhook_url.as_ref().map(|u| u.expose().host_str()), Some(Some("hooks.example")));
    assert!(!format!("{s:?}").contains("s3cr3t"));
    for bad in ["ftp://hooks.example/s3cr3t", "hooks.example/s3cr3t", "file:///s3cr3t"] {
        let err = with(&[("ALERT_WEBHOOK_URL", bad)]).unwrap_err().to_string();
        assert!(err.contains("ALERT_WEBHOOK_URL") && !err.contains("s3cr3t"), "{err}");
    }
}
