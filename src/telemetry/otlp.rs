//! The OTLP/JSON encoding of a batch of spans, as `POST /v1/traces` takes it
//! (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>):
//! ids as hex strings, 64-bit numbers as decimal strings, enums as their
//! numbers, field names in lowerCamelCase.

use super::span::{SpanData, Value as AttrValue};
use serde_json::{json, Value};

/// Who sends the spans: the resource every span of the process shares.
#[derive(Debug, Clone)]
pub struct Resource {
    pub service_name: String,
    pub service_version: &'static str,
}

/// OTLP's `Status.code`.
const STATUS_ERROR: u8 = 2;

/// The instrumentation scope: the gate's own code.
const SCOPE: &str = "ollama-gate";

pub fn encode(resource: &Resource, spans: &[SpanData]) -> Value {
    json!({
        "resourceSpans": [{
            "resource": {
                "attributes": [
                    attribute("service.name", &AttrValue::Str(resource.service_name.clone())),
                    attribute("service.version", &AttrValue::Str(resource.service_version.into())),
                ]
            },
            "scopeSpans": [{
                "scope": {"name": SCOPE, "version": resource.service_version},
                "spans": spans.iter().map(span).collect::<Vec<_>>(),
            }]
        }]
    })
}

fn span(s: &SpanData) -> Value {
    let mut out = json!({
        "traceId": s.trace_id.hex(),
        "spanId": s.span_id.hex(),
        "name": s.name,
        "kind": s.kind as u8,
        "startTimeUnixNano": s.start.to_string(),
        "endTimeUnixNano": s.end.max(s.start).to_string(),
        "attributes": s.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
        "status": {},
    });
    if let Some(parent) = s.parent {
        out["parentSpanId"] = parent.hex().into();
    }
    if let Some(message) = &s.error {
        out["status"] = json!({"code": STATUS_ERROR, "message": message});
    }
    out
}

fn attribute(key: &str, value: &AttrValue) -> Value {
    let value = match value {
        AttrValue::Str(s) => json!({"stringValue": s}),
        AttrValue::Int(n) => json!({"intValue": n.to_string()}),
    };
    json!({"key": key, "value": value})
}

#[cfg(test)]
mod tests {
    use super::super::context::TraceParent;
    use super::super::span::SpanKind;
    use super::*;

    #[test]
    fn a_span_is_encoded_as_the_otlp_json_mapping_says() {
        let p = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let child = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01").unwrap();
        let spans = [SpanData {
            trace_id: p.trace_id,
            span_id: child.parent_id,
            parent: Some(p.parent_id),
            name: "POST /api/chat".into(),
            kind: SpanKind::Server,
            start: 1_700_000_000_000_000_001,
            end: 1_700_000_000_500_000_000,
            attributes: vec![
                ("gen_ai.request.model", "llama3".into()),
                ("gen_ai.usage.input_tokens", 7.into()),
            ],
            error: Some("upstream_error".into()),
        }];
        let resource = Resource { service_name: "gate-a".into(), service_version: "1.2.3" };
        assert_eq!(
            encode(&resource, &spans),
            json!({"resourceSpans": [{
                "resource": {"attributes": [
                    {"key": "service.name", "value": {"stringValue": "gate-a"}},
                    {"key": "service.version", "value": {"stringValue": "1.2.3"}},
                ]},
                "scopeSpans": [{
                    "scope": {"name": "ollama-gate", "version": "1.2.3"},
                    "spans": [{
                        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
                        "spanId": "b7ad6b7169203331",
                        "parentSpanId": "00f067aa0ba902b7",
                        "name": "POST /api/chat",
                        "kind": 2,
                        "startTimeUnixNano": "1700000000000000001",
                        "endTimeUnixNano": "1700000000500000000",
                        "attributes": [
                            {"key": "gen_ai.request.model", "value": {"stringValue": "llama3"}},
                            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}},
                        ],
                        "status": {"code": 2, "message": "upstream_error"},
                    }]
                }]
            }]})
        );
    }

    #[test]
    fn a_root_span_has_no_parent_and_an_unset_status() {
        let p = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let s = SpanData {
            trace_id: p.trace_id,
            span_id: p.parent_id,
            parent: None,
            name: "GET".into(),
            kind: SpanKind::Internal,
            start: 5,
            end: 3,
            attributes: vec![],
            error: None,
        };
        let out = span(&s);
        assert!(out.get("parentSpanId").is_none());
        assert_eq!(out["status"], json!({}));
        assert_eq!((out["kind"].as_u64(), out["endTimeUnixNano"].as_str()), (Some(1), Some("5")));
    }
}
