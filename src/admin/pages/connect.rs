//! The connect page: the proxy's address and snippets for common clients.

use super::{render, Chrome, Nav, Page};
use crate::admin::auth::Console;
use crate::admin::snippets::{client_snippets, public_base_url};
use crate::admin::AdminState;
use actix_web::web::Data;
use actix_web::HttpRequest;
use askama::Template;

#[derive(Template)]
#[template(path = "admin/connect.html")]
struct ConnectPage {
    chrome: Chrome,
    base: String,
    snippets: Vec<(&'static str, String)>,
}

pub async fn connect_page(req: HttpRequest, console: Console, state: Data<AdminState>) -> Page {
    let base = public_base_url(&state, &req);
    let s = client_snippets(&base);
    let text = |name: &str| s[name].as_str().unwrap_or_default().to_owned();
    let snippets = vec![
        ("curl", text("curl")),
        ("OpenAI SDK (Python)", text("openai_python")),
        ("Anthropic SDK (Python)", text("anthropic_python")),
        ("Claude Code", text("claude_code")),
        ("ollama client (Python)", text("ollama_python")),
        ("LangChain", text("langchain")),
        ("Open WebUI", text("open_webui")),
        ("Environment variables", text("environment")),
    ];
    render(&ConnectPage { chrome: Chrome::new(&console.session, Nav::Connect), base, snippets })
}
