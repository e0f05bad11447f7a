//! `livechat`: the command line. A thin layer over the library crates.

mod cli;
mod logs;
mod progress;
mod replay;
mod report;
mod serve;
mod transfer;
mod user;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, EventsCommand, ProjectionsCommand};

/// A failure, split by who can fix it.
#[derive(Debug)]
pub enum Failure {
    /// The operator's mistake (bad flag, unreachable store, file in use): exit code 2.
    Usage(String),
    /// Something broke while working: exit code 1.
    Runtime(String),
}

impl From<store::StoreError> for Failure {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Database(_) | store::StoreError::Corrupt(_) | store::StoreError::Timeout { .. } => {
                Failure::Runtime(e.to_string())
            }
            _ => Failure::Usage(e.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Runtime(e.to_string())
    }
}

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
            let store = cli::open(&url).await?;
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
        Command::Projections(ProjectionsCommand::Status { json }) => progress::status(&url, json).await,
        Command::Projections(ProjectionsCommand::Rebuild(args)) => progress::rebuild(&url, args).await,
        Command::Projections(ProjectionsCommand::Parked { name, limit }) => progress::parked(&url, &name, limit).await,
        Command::Export { until } => transfer::export(&url, until).await,
        Command::Import => transfer::import(&url).await,
        Command::User(cmd) => user::run(&url, cmd).await,
        Command::Report(args) => report::run(&url, args).await,
        Command::Replay(args) => replay::run(&url, args).await,
    }
}
