//! The connect page: the proxy's address and snippets for common clients,
//! each whole enough to run as pasted.

use super::{render, Chrome, Nav, Page};
use crate::admin::auth::Console;
use crate::admin::snippets::{client_snippets, public_base_url, snippet_model};
use crate::admin::AdminState;
use actix_web::web::Data;
use actix_web::HttpRequest;
use askama::Template;

/// One client: its name, how to run the snippet, and the snippet.
struct Snippet {
    title: &'static str,
    how: &'static str,
    code: String,
}

#[derive(Template)]
#[template(path = "admin/connect.html")]
struct ConnectPage {
    chrome: Chrome,
    base: String,
    model: String,
    snippets: Vec<Snippet>,
}

pub async fn connect_page(
    req: HttpRequest,
    console: Console,
    state: Data<AdminState>,
    client: Data<awc::Client>,
) -> Page {
    let base = public_base_url(&state, &req);
    let model = snippet_model(&state, &client).await;
    let s = client_snippets(&base, &model);
    let snippet = |title, how, name: &str| Snippet {
        title,
        how,
        code: s[name].as_str().unwrap_or_default().to_owned(),
    };
    let python =
        "A Python program: pip install the package it imports, save it as hello.py, run python3 hello.py.";
    let snippets = vec![
        snippet("curl", "A shell command.", "curl"),
        snippet("OpenAI SDK (Python)", python, "openai_python"),
        snippet("Anthropic SDK (Python)", python, "anthropic_python"),
        snippet("ollama client (Python)", python, "ollama_python"),
        snippet("LangChain", "A Python program (pip install langchain-ollama).", "langchain"),
        snippet("Claude Code", "A shell command, with Claude Code installed.", "claude_code"),
        snippet("Environment variables", "Shell lines, for tools that read these variables.", "environment"),
        snippet("Open WebUI", "Settings to enter in Open WebUI.", "open_webui"),
    ];
    render(&ConnectPage { chrome: Chrome::new(&console.session, Nav::Connect), base, model, snippets })
}
