//! One request's spans: a SERVER span for the whole request, with children
//! for its admission, its wait for a slot, the upstream call (CLIENT, whose id
//! goes upstream in `traceparent`) and its settlement. Attributes follow the
//! OpenTelemetry HTTP and GenAI semantic conventions.
//!
//! The spans are kept here until the request settles, then handed to the
//! exporter together, once: by the refusal, or by the ticket's settlement,
//! whichever ends the request. A trace the caller marked as not sampled is
//! still propagated upstream, and never exported.

use super::policy::routes::{Kind, Route};
use crate::telemetry::context::{SpanId, TraceId, TraceParent};
use crate::telemetry::span::{self, SpanData, SpanKind, Value};
use crate::telemetry::Tracer;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::HttpRequest;

const PROVIDER: &str = "ollama";

pub struct RequestTrace {
    tracer: Tracer,
    sampled: bool,
    trace_id: TraceId,
    root: SpanId,
    /// The caller's span, when it sent a valid `traceparent`.
    remote_parent: Option<SpanId>,
    start: u64,
    method: &'static str,
    route: Option<&'static str>,
    operation: Option<&'static str>,
    upstream: Option<Upstream>,
    children: Vec<SpanData>,
}

struct Upstream {
    id: SpanId,
    start: u64,
}

/// What goes upstream about the trace, in place of the client's headers.
pub struct UpstreamTrace {
    pub traceparent: HeaderValue,
    /// The client's `tracestate` belongs to the trace it named: it passes
    /// only when the request continues that trace.
    pub keep_tracestate: bool,
}

impl UpstreamTrace {
    /// A client header this replaces or drops.
    pub fn replaces(&self, name: &HeaderName) -> bool {
        name == "traceparent" || (name == "tracestate" && !self.keep_tracestate)
    }
}

/// How the request ended, for the root span.
pub struct Finish<'a> {
    pub http_status: u16,
    /// Why it failed or was refused; `None` when it succeeded.
    pub error: Option<&'a str>,
    pub key_id: Option<i64>,
    pub request_id: &'a str,
    pub model: Option<&'a str>,
    /// Prompt and completion tokens, as charged.
    pub tokens: Option<(i64, i64)>,
}

impl RequestTrace {
    pub fn begin(tracer: &Tracer, req: &HttpRequest) -> RequestTrace {
        let mut sent = req.headers().get_all("traceparent");
        // Several `traceparent` headers are as good as an invalid one.
        let parent = match (sent.next(), sent.next()) {
            (Some(one), None) => one.to_str().ok().and_then(TraceParent::parse),
            _ => None,
        };
        RequestTrace {
            tracer: tracer.clone(),
            sampled: parent.is_none_or(|p| p.sampled),
            trace_id: parent.map_or_else(TraceId::random, |p| p.trace_id),
            root: SpanId::random(),
            remote_parent: parent.map(|p| p.parent_id),
            start: span::now(),
            method: method_name(req.method()),
            route: None,
            operation: None,
            upstream: None,
            children: Vec::new(),
        }
    }

    /// The route is known: the span is named by its pattern, never by the raw path.
    pub fn route(&mut self, route: &Route) {
        self.route = Some(route.name);
        self.operation = operation(route.kind);
    }

    /// An internal child span that has ended.
    pub fn child(&mut self, name: &'static str, start: u64, end: u64, error: Option<&str>) {
        self.children.push(SpanData {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            parent: Some(self.root),
            name: name.into(),
            kind: SpanKind::Internal,
            start,
            end,
            attributes: Vec::new(),
            error: error.map(str::to_owned),
        });
    }

    /// The upstream call begins: the header that names its span.
    pub fn upstream_begins(&mut self) -> UpstreamTrace {
        let id = SpanId::random();
        self.upstream = Some(Upstream { id, start: span::now() });
        let header = TraceParent::header(self.trace_id, id, self.sampled);
        UpstreamTrace {
            traceparent: HeaderValue::from_str(&header).unwrap_or_else(|_| HeaderValue::from_static("")),
            keep_tracestate: self.remote_parent.is_some(),
        }
    }

    /// The request waited for a slot from `start` to `end`: the upstream call began after.
    pub fn waited(&mut self, start: u64, end: u64) {
        self.child("queue", start, end, None);
        if let Some(upstream) = &mut self.upstream {
            upstream.start = upstream.start.max(end);
        }
    }

    /// The upstream call is over (its answer ended, or it never came). A
    /// call that was never sent leaves no span.
    pub fn upstream_ends(&mut self, sent: bool, http_status: u16, error: Option<&str>, model: &str) {
        let Some(upstream) = self.upstream.take() else { return };
        if !sent {
            return;
        }
        let mut attributes = vec![("http.request.method", Value::from(self.method))];
        if http_status > 0 {
            attributes.push(("http.response.status_code", i64::from(http_status).into()));
        }
        attributes.extend(self.gen_ai(Some(model)));
        self.children.push(SpanData {
            trace_id: self.trace_id,
            span_id: upstream.id,
            parent: Some(self.root),
            name: "upstream".into(),
            kind: SpanKind::Client,
            start: upstream.start,
            end: span::now(),
            attributes,
            error: error.map(str::to_owned),
        });
    }

    /// The request is over: its root span, with the children, goes to the exporter.
    pub fn finish(mut self, end: Finish<'_>) {
        if !self.sampled {
            return;
        }
        let name = match self.route {
            Some(route) => format!("{} {route}", self.method),
            None => self.method.to_owned(),
        };
        let mut attributes = vec![("http.request.method", Value::from(self.method))];
        if let Some(route) = self.route {
            attributes.push(("http.route", route.into()));
        }
        attributes.push(("http.response.status_code", i64::from(end.http_status).into()));
        attributes.extend(self.gen_ai(end.model));
        if let Some((input, output)) = end.tokens {
            attributes.push(("gen_ai.usage.input_tokens", input.into()));
            attributes.push(("gen_ai.usage.output_tokens", output.into()));
        }
        if let Some(key_id) = end.key_id {
            attributes.push(("ollama_gate.key_id", key_id.into()));
        }
        attributes.push(("ollama_gate.request_id", end.request_id.into()));
        if let Some(error) = end.error {
            attributes.push(("error.type", error.into()));
        }
        let root = SpanData {
            trace_id: self.trace_id,
            span_id: self.root,
            parent: self.remote_parent,
            name,
            kind: SpanKind::Server,
            start: self.start,
            end: span::now(),
            attributes,
            error: end.error.map(str::to_owned),
        };
        let mut spans = std::mem::take(&mut self.children);
        spans.insert(0, root);
        self.tracer.export(spans);
    }

    /// The GenAI attributes, on routes that run a model.
    fn gen_ai(&self, model: Option<&str>) -> Vec<(&'static str, Value)> {
        let Some(operation) = self.operation else { return Vec::new() };
        let mut out = vec![
            ("gen_ai.operation.name", Value::from(operation)),
            ("gen_ai.provider.name", PROVIDER.into()),
            ("gen_ai.system", PROVIDER.into()),
        ];
        if let Some(model) = model.filter(|m| !m.is_empty()) {
            out.push(("gen_ai.request.model", model.into()));
        }
        out
    }
}

/// `gen_ai.operation.name` of a route that runs a model.
fn operation(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Chat | Kind::OpenAiChat | Kind::OpenAiResponses | Kind::AnthropicMessages => Some("chat"),
        Kind::Generate | Kind::OpenAiCompletions => Some("text_completion"),
        Kind::Embed | Kind::Embeddings | Kind::OpenAiEmbeddings => Some("embeddings"),
        _ => None,
    }
}

/// The HTTP semantic conventions' method names: the known ones, else `_OTHER`,
/// so a client's made-up method cannot become a span name.
fn method_name(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"];
    KNOWN.into_iter().find(|m| *m == method.as_str()).unwrap_or("_OTHER")
}
