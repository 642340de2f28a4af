//! ollama-gate's benchmark harness: the mock directly, through nginx as a
//! plain reverse proxy, through the gate (and optionally LiteLLM), in
//! alternating rounds, with the proxy under test alone on one core and the
//! mock and load client on the other.
//!
//!   cargo run --release -p ollama-gate-bench              # every scenario, about 5 minutes
//!   cargo run --release -p ollama-gate-bench -- --quick   # under a minute, before a commit
//!   cargo run --release -p ollama-gate-bench -- --peer litellm
//!   cargo run --release -p ollama-gate-bench -- --fairness   # the fair queue's lane alone, under a minute
//!   cargo run --release -p ollama-gate-bench -- console      # console pages on 200,000 usage rows

mod client;
mod console;
mod fairness;
mod load;
mod mock;
mod procs;
mod quota;
mod report;
mod run;
mod stats;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "ollama-gate-bench", about = "Measures ollama-gate against a fast mock upstream")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A short run (under a minute) to catch a regression before committing.
    #[arg(long)]
    quick: bool,
    /// Also measure another gateway in the same rounds.
    #[arg(long, value_enum)]
    peer: Option<Peer>,
    /// Also measure quota transactions on this PostgreSQL database (it gets a key table).
    #[arg(long, env = "BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Where to write the raw results (default: the run's folder under target/bench).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measure this gate binary instead of building target/release/ollama-gate.
    #[arg(long)]
    gate_bin: Option<PathBuf>,
    /// Also measure this earlier gate binary in the same rounds, as a lane named
    /// "before": before-and-after figures from one run.
    #[arg(long)]
    before_bin: Option<PathBuf>,
    /// The gate lane's key belongs to a user in a team, and the key, the user
    /// and the team each have every limit and a limit for every model: each
    /// request is counted in six rows. The "before" lane keeps a key alone.
    #[arg(long)]
    people: bool,
    /// Leave out the nginx lane (a plain reverse proxy, the anchor of every ratio).
    #[arg(long)]
    no_nginx: bool,
    /// Only the fairness lane: a heavy key keeping 32 requests in flight and a
    /// light key sending one at a time, to a mock GPU with 4 slots, straight
    /// and through the gate (OLLAMA_URL=...?slots=4). A full run without
    /// --quick includes it; with --quick, a shorter version.
    #[arg(long)]
    fairness: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the mock upstream only (the runner starts it by itself).
    Mock {
        #[arg(long, default_value = "127.0.0.1:11434")]
        listen: String,
    },
    /// Quota transactions per second only, on one database, in rounds.
    Quota {
        /// sqlite://FILE or postgres://... (it gets the gate's tables and a key).
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// The levels to measure, side by side in each round (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "key")]
        levels: Vec<quota::Level>,
        /// Requests admitted at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// The dashboard, the usage page, its daily totals and the CSV export,
    /// timed on a usage log of this many rows.
    Console {
        #[arg(long, default_value_t = 200_000)]
        rows: i64,
        /// Each page is asked for this many times; the median is reported.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// The rows are spread evenly over this many days up to now: 1 puts
        /// all of them in today, this month and the charts (the worst case).
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// Measure this gate binary instead of building target/release/ollama-gate.
        #[arg(long)]
        gate_bin: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Peer {
    Litellm,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build();
    if let Some(Command::Mock { listen }) = &cli.command {
        let listen = listen.clone();
        return runtime()?.block_on(async {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            println!("mock listening on {}", listener.local_addr()?);
            mock::serve(listener).await?;
            Ok(())
        });
    }
    if let Some(Command::Quota { database, seconds, rounds, levels, concurrency }) = &cli.command {
        return runtime()?.block_on(async {
            for round in 1..=*rounds {
                for &level in levels {
                    let duration = std::time::Duration::from_secs(*seconds);
                    let rps = quota::requests_per_second(database, *concurrency, duration, level).await?;
                    println!(
                        "round {round} {level:?}: {:.0} quota transactions/s ({rps:.0} requests/s, {:.0} us each \
                         at {concurrency} at once)",
                        2.0 * rps,
                        1e6 / rps
                    );
                }
            }
            Ok(())
        });
    }
    if procs::online_cores() < 2 {
        anyhow::bail!(
            "the benchmark needs two cores: one for the gate, one for the mock and the load client"
        );
    }
    // Before the runtime, so that every thread the client starts stays on its core.
    procs::pin_current_thread(procs::LOAD_CORE)?;
    if let Some(Command::Console { rows, rounds, days, gate_bin }) = &cli.command {
        let bin = run::gate_binary(gate_bin.clone())?;
        return runtime()?.block_on(console::run(bin, *rows, (*rounds).max(1), (*days).max(1)));
    }
    runtime()?.block_on(run::run(run::Options {
        quick: cli.quick,
        peer_litellm: matches!(cli.peer, Some(Peer::Litellm)),
        postgres: cli.postgres,
        out: cli.out,
        gate_bin: cli.gate_bin,
        before_bin: cli.before_bin,
        people: cli.people,
        nginx: !cli.no_nginx,
        fairness: cli.fairness,
    }))
}
