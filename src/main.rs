use clap::Parser;
use ollama_gate::cli::{run, Cli};
use ollama_gate::config::Settings;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `.env` may set RUST_LOG, so it is read before the logger starts.
    let _ = dotenvy::dotenv();
    ollama_gate::logging::init("info,sqlx=warn");
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ollama-gate: {e:#}");
            return ExitCode::from(2);
        }
    };
    match actix_web::rt::System::new().block_on(run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ollama-gate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
