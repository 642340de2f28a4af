//! Client connection details: the proxy's address as clients should use it,
//! and snippets for common clients, for `/api/proxy-info` and the console's
//! connect page.

use super::AdminState;
use actix_web::HttpRequest;
use serde_json::{json, Value};

/// The proxy's base URL as clients should use it.
pub fn public_base_url(state: &AdminState, req: &HttpRequest) -> String {
    if let Some(url) = &state.settings.public_url {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let host = match state.settings.proxy_host.as_str() {
        "0.0.0.0" | "::" | "[::]" | "" => {
            let conn = req.connection_info();
            let requested = conn.host().to_owned();
            let name = requested.rsplit_once(':').map(|(h, _)| h.to_owned()).unwrap_or(requested);
            if name.is_empty() {
                "localhost".to_owned()
            } else {
                name
            }
        }
        h => h.to_owned(),
    };
    format!("http://{host}:{}", state.settings.proxy_port)
}

pub fn client_snippets(base: &str) -> Value {
    json!({
        "curl": format!("curl {base}/api/chat -H \"Authorization: Bearer $OLLAMA_GATE_KEY\" \\\n  -d '{{\"model\": \"llama3.2\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'"),
        "openai_python": format!("from openai import OpenAI\nclient = OpenAI(base_url=\"{base}/v1\", api_key=os.environ[\"OLLAMA_GATE_KEY\"])"),
        "anthropic_python": format!("from anthropic import Anthropic\nclient = Anthropic(base_url=\"{base}\", api_key=os.environ[\"OLLAMA_GATE_KEY\"])"),
        "ollama_python": format!("from ollama import Client\nclient = Client(host=\"{base}\", headers={{\"Authorization\": \"Bearer \" + os.environ[\"OLLAMA_GATE_KEY\"]}})"),
        "claude_code": format!("ANTHROPIC_BASE_URL={base} ANTHROPIC_AUTH_TOKEN=$OLLAMA_GATE_KEY claude"),
        "langchain": format!("from langchain_ollama import ChatOllama\nllm = ChatOllama(model=\"llama3.2\", base_url=\"{base}\",\n    client_kwargs={{\"headers\": {{\"Authorization\": \"Bearer \" + os.environ[\"OLLAMA_GATE_KEY\"]}}}})"),
        "open_webui": format!("Admin settings > Connections > OpenAI API: URL {base}/v1, key $OLLAMA_GATE_KEY"),
        "environment": format!("OPENAI_BASE_URL={base}/v1\nOPENAI_API_KEY=$OLLAMA_GATE_KEY\nOLLAMA_HOST={base}"),
    })
}
