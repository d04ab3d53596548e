//! `heartbeater`: run a monitor, beat as a client, watch etcd, impair a network, run the
//! demo and the benchmarks. Every subcommand is a thin layer over hb-core.

mod bench;
mod cli;
mod commands;
mod demo;
mod elect;
mod escape;
mod event_line;
mod fail;
mod impair;
mod procstat;
mod relay;
mod signals;
mod trial;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("heartbeater: {}", escape::line(&e.message));
            e.code
        }
    };
    std::process::exit(code);
}
