use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = cacherate::cli::Cli::parse();
    let verbose = matches!(&cli.command, cacherate::cli::Command::Run(args) if args.verbose);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CACHERATE_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(if verbose { "cacherate=debug" } else { "warn" })
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    // Thousands of concurrent streams need as many sockets: raise the soft
    // descriptor limit to the hard one.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("warning: cannot raise the open-file limit: {e}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cacherate::exit::INTERNAL as u8);
        }
    };
    match runtime.block_on(cacherate::run(cli, argv)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
