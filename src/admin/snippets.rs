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

/// The model the snippets name: the first one the upstream lists, so each
/// runs as pasted; a common name when no backend answers.
pub async fn snippet_model(state: &AdminState, client: &awc::Client) -> String {
    let tags = state.upstreams.tags(client).await.unwrap_or_default();
    tags["models"][0]["name"].as_str().unwrap_or("llama3.2").to_owned()
}

/// Ready-to-paste client snippets. Each is whole: the shell ones run in a
/// shell with `OLLAMA_GATE_KEY` exported, the Python ones are programs with
/// their imports that send one message and print the answer.
pub fn client_snippets(base: &str, model: &str) -> Value {
    // JSON and Python string literals both take a JSON-escaped string.
    let m = Value::from(model).to_string();
    let shell_json = m.replace('\'', "'\\''");
    json!({
        "curl": format!("curl -sS {base}/api/chat -H \"Authorization: Bearer $OLLAMA_GATE_KEY\" \\\n  -d '{{\"model\": {shell_json}, \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}], \"stream\": false}}'"),
        "openai_python": format!("import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url=\"{base}/v1\", api_key=os.environ[\"OLLAMA_GATE_KEY\"])\nreply = client.chat.completions.create(\n    model={m}, messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}]\n)\nprint(reply.choices[0].message.content)"),
        "anthropic_python": format!("import os\nfrom anthropic import Anthropic\n\nclient = Anthropic(base_url=\"{base}\", api_key=os.environ[\"OLLAMA_GATE_KEY\"])\nreply = client.messages.create(\n    model={m}, max_tokens=256, messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}]\n)\nprint(reply.content[0].text)"),
        "ollama_python": format!("import os\nfrom ollama import Client\n\nclient = Client(host=\"{base}\", headers={{\"Authorization\": \"Bearer \" + os.environ[\"OLLAMA_GATE_KEY\"]}})\nreply = client.chat(model={m}, messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}])\nprint(reply.message.content)"),
        "claude_code": format!("ANTHROPIC_BASE_URL={base} ANTHROPIC_AUTH_TOKEN=\"$OLLAMA_GATE_KEY\" ANTHROPIC_MODEL={shell_model} claude", shell_model = shell_word(model)),
        "langchain": format!("import os\nfrom langchain_ollama import ChatOllama\n\nllm = ChatOllama(\n    model={m},\n    base_url=\"{base}\",\n    client_kwargs={{\"headers\": {{\"Authorization\": \"Bearer \" + os.environ[\"OLLAMA_GATE_KEY\"]}}}},\n)\nprint(llm.invoke(\"Hello\").content)"),
        "open_webui": format!("Admin settings > Connections > OpenAI API: URL {base}/v1, key: the key itself"),
        "environment": format!("export OPENAI_BASE_URL={base}/v1\nexport OPENAI_API_KEY=\"$OLLAMA_GATE_KEY\"\nexport ANTHROPIC_BASE_URL={base}\nexport ANTHROPIC_AUTH_TOKEN=\"$OLLAMA_GATE_KEY\""),
    })
}

/// A word the shell takes as it is: single-quoted unless plainly safe.
fn shell_word(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c)) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}
