//! The OpenTelemetry settings, read as the OpenTelemetry SDKs read their
//! standard variables, so a deployment's existing `OTEL_*` values just work.

use super::Secret;
use anyhow::{anyhow, bail};
use url::Url;

/// Where and how traces are exported; `None` in `Settings` when they are not.
#[derive(Debug, Clone)]
pub struct OtelSettings {
    /// The full URL spans are posted to.
    pub traces_url: Url,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: often an API token, so never shown.
    pub headers: Vec<(String, Secret<String>)>,
    pub service_name: String,
}

/// Tracing is on when an endpoint is set and `OTEL_SDK_DISABLED` is not true.
/// `opt` reads a setting, `None` when unset or blank.
pub fn read(opt: &dyn Fn(&str) -> Option<String>, disabled: bool) -> anyhow::Result<Option<OtelSettings>> {
    let url = match (opt("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), opt("OTEL_EXPORTER_OTLP_ENDPOINT")) {
        (Some(full), _) => parse_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &full)?,
        // The base endpoint gets the signal's path, after whatever path it has.
        (None, Some(base)) => {
            parse_url("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("{}/v1/traces", base.trim_end_matches('/')))?
        }
        (None, None) => return Ok(None),
    };
    if disabled {
        return Ok(None);
    }
    Ok(Some(OtelSettings {
        traces_url: url,
        headers: headers(&opt("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default())?,
        service_name: opt("OTEL_SERVICE_NAME").unwrap_or_else(|| "ollama-gate".into()),
    }))
}

fn parse_url(name: &str, text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).map_err(|e| anyhow!("invalid {name}: '{text}': {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!(
            "invalid {name}: '{text}' (expected an http:// or https:// URL, such as http://localhost:4318)"
        );
    }
    Ok(url)
}

/// `name=value,name2=value2`, values percent-decoded (the W3C Baggage form
/// the SDKs use). The values are not shown in any error: they are tokens.
fn headers(text: &str) -> anyhow::Result<Vec<(String, Secret<String>)>> {
    let mut out = Vec::new();
    for (n, pair) in text.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
        let entry = n + 1;
        let Some((name, value)) = pair.split_once('=') else {
            bail!("invalid OTEL_EXPORTER_OTLP_HEADERS: entry {entry} is not name=value");
        };
        let name = name.trim().to_ascii_lowercase();
        let value = percent_decode(value.trim()).ok_or_else(|| {
            anyhow!("invalid OTEL_EXPORTER_OTLP_HEADERS: the value of {name} is badly escaped")
        })?;
        if actix_web::http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            bail!("invalid OTEL_EXPORTER_OTLP_HEADERS: entry {entry} has no valid header name");
        }
        if actix_web::http::header::HeaderValue::from_str(&value).is_err() {
            bail!("invalid OTEL_EXPORTER_OTLP_HEADERS: the value of {name} is not a valid header value");
        }
        out.push((name, Secret(value)));
    }
    Ok(out)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(pair, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)], disabled: bool) -> anyhow::Result<Option<OtelSettings>> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        read(&|name| map.get(name).map(|v| v.to_string()), disabled)
    }

    #[test]
    fn no_endpoint_or_disabled_means_no_traces() {
        assert!(with(&[], false).unwrap().is_none());
        assert!(with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")], true).unwrap().is_none());
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_full_one_wins() {
        let s = with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")], false).unwrap().unwrap();
        assert_eq!(s.traces_url.as_str(), "http://c:4318/v1/traces");
        assert_eq!(s.service_name, "ollama-gate");
        let s = with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/otlp")], false).unwrap().unwrap();
        assert_eq!(s.traces_url.as_str(), "http://c:4318/otlp/v1/traces");
        let s = with(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t.example/api/traces"),
            ],
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.traces_url.as_str(), "https://t.example/api/traces");
    }

    #[test]
    fn headers_are_read_decoded_and_kept_out_of_errors() {
        let s = with(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20tok-123, x-scope=a=b"),
            ],
            false,
        )
        .unwrap()
        .unwrap();
        let shown: Vec<(&str, &str)> =
            s.headers.iter().map(|(k, v)| (k.as_str(), v.expose().as_str())).collect();
        assert_eq!(shown, [("authorization", "Bearer tok-123"), ("x-scope", "a=b")]);
        assert!(!format!("{s:?}").contains("tok-123"), "the headers never show in debug output");
        for bad in ["novalue", "a b=secret-1", "x=secret%zz", "x=secret%0a"] {
            let err = with(
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_EXPORTER_OTLP_HEADERS", bad)],
                false,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("OTEL_EXPORTER_OTLP_HEADERS") && !err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn an_endpoint_that_is_not_http_is_named() {
        for bad in ["c:4318", "ftp://c/x", "not a url"] {
            let err = with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)], false).unwrap_err().to_string();
            assert!(err.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{err}");
        }
    }
}
