//! The admin listener answers only the host names it serves
//! (`ADMIN_ALLOWED_HOSTS`). A page on another site whose name an attacker
//! re-points at 127.0.0.1 (DNS rebinding) is same-origin with itself, so the
//! browser sends it cookies-free but otherwise unchecked requests; its Host
//! header still names the attacker's site, and gets `421 Misdirected Request`.

use crate::admin::AdminState;
use crate::forwarded::request_host;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::HttpResponse;

/// `name` matches `name` on any port; `name:port` only that port; `*` anything.
pub fn allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_end_matches('.');
    let name = match host.rsplit_once(':') {
        // `[::1]:8001` and `localhost:8001`; a bare `[::1]` has its colons inside brackets.
        Some((name, port)) if !port.contains(']') && port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_end_matches('.');
    allowed.iter().any(|entry| entry == "*" || entry == name || entry == host)
}

pub async fn only_allowed_hosts(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<Data<AdminState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let settings = &state.settings;
    let host = request_host(req.request(), &settings.trusted_proxies);
    match host {
        Some(host) if allowed(&host, &settings.admin_allowed_hosts) => {
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        other => {
            log::info!(
                "admin request for host {:?} refused: not in ADMIN_ALLOWED_HOSTS",
                other.as_deref().unwrap_or("(none)")
            );
            let response = HttpResponse::MisdirectedRequest().json(serde_json::json!({
                "error": "this host name is not served here (ADMIN_ALLOWED_HOSTS)"
            }));
            Ok(req.into_response(response))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn names_match_on_any_port_and_name_port_on_one() {
        let list: Vec<String> =
            ["localhost", "127.0.0.1", "[::1]", "admin.example:8443"].iter().map(|s| s.to_string()).collect();
        for ok in [
            "localhost",
            "localhost:8001",
            "127.0.0.1:9",
            "[::1]",
            "[::1]:8001",
            "admin.example:8443",
            "localhost.",
        ] {
            assert!(allowed(ok, &list), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:8001",
            "admin.example",
            "admin.example:80",
            "localhost.evil",
            "127.0.0.2:8001",
            "",
        ] {
            assert!(!allowed(refused, &list), "{refused}");
        }
        assert!(allowed("anything:1", &["*".to_string()]));
    }
}
