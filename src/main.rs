//! `livechat`: the command line. A thin layer over the library crates: this file parses the
//! flags (`cli`), dispatches to one subcommand module and turns its `Failure` into the exit code.

// The subcommands: only `run` below uses them.
mod projectors;
mod replay;
mod report;
mod serve;
mod transfer;
mod user;

// What the subcommands share; none of these imports a subcommand.
mod as_of;
mod cli;
mod failure;
mod logs;
mod progress;
mod store_open;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, EventsCommand, ProjectionsCommand};
use crate::failure::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logs::init(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("livechat: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("livechat: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(msg)) => {
            eprintln!("livechat: {msg}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let url = cli.store.clone();
    match cli.command {
        Command::Serve(args) => serve::serve(&url, *args).await,
        Command::Migrate => {
            let store = store_open::open(&url).await?;
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("{url}: schema is up to date");
            }
            for m in applied {
                println!("{url}: applied migration {} ({})", m.version, m.name);
            }
            Ok(())
        }
        Command::Events(EventsCommand::Tail(args)) => transfer::tail(&url, args).await,
        Command::Events(EventsCommand::Show { stream }) => transfer::show(&url, &stream).await,
        Command::Projections(ProjectionsCommand::Status { json }) => projectors::status(&url, json).await,
        Command::Projections(ProjectionsCommand::Rebuild(args)) => projectors::rebuild(&url, args).await,
        Command::Projections(ProjectionsCommand::Parked { name, limit }) => {
            projectors::parked(&url, &name, limit).await
        }
        Command::Export { until } => transfer::export(&url, until).await,
        Command::Import => transfer::import(&url).await,
        Command::User(cmd) => user::run(&url, cmd).await,
        Command::Report(args) => report::run(&url, args).await,
        Command::Replay(args) => replay::run(&url, args).await,
    }
}
