//! The `streamcache` binary: parse the command line, load configuration, set up logging and
//! signals, and hand over to the library. Exit codes: 0 success, 1 runtime failure (including a
//! data directory locked by another process), 2 bad usage or configuration.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use streamcache::cli::{self, BenchCommand, Command, ConfigCommand, ServeArgs, commands};
use streamcache::config::{self, LogFormat, Overrides};
use streamcache::engine::{self, Engine};
use streamcache::server;
use streamcache::shutdown::Shutdown;

/// The binary's allocator. The engines allocate and free small objects on every request (decoded
/// documents, cache values, JSON trees); mimalloc's per-thread free lists serve them with less
/// work than glibc's. A library user embedding streamcache keeps their own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let parsed = match cli::parse(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match parsed.cli.command {
        Some(Command::Config(ConfigCommand::Default)) => {
            print!("{}", config::default_toml());
            ExitCode::SUCCESS
        }
        Some(Command::Produce(args)) => commands::produce(args),
        Some(Command::Bench(BenchCommand::E2e(args))) => commands::bench_e2e(args),
        Some(Command::Serve(args)) => serve(&args, &parsed.overrides),
        Some(Command::Transform(args)) => commands::transform(&args),
        None => serve(&parsed.cli.serve, &parsed.overrides),
    }
}

fn serve(args: &ServeArgs, overrides: &Overrides) -> ExitCode {
    let loaded = match config::load(args.config.as_deref(), overrides) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("streamcache: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&loaded.config.log_level, loaded.config.log_format);
    // A misspelt variable would otherwise be ignored without a word (a misspelt key in the
    // file is an error).
    for warning in cli::unknown_env_vars(std::env::vars_os().map(|(name, _)| name)) {
        tracing::warn!("{warning}");
    }
    server::raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("streamcache: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let source = config::ConfigSource {
        file: args.config.clone(),
        overrides: overrides.clone(),
    };
    runtime.block_on(serve_async(loaded, source))
}

async fn serve_async(loaded: config::Loaded, source: config::ConfigSource) -> ExitCode {
    let engine = match Engine::open(loaded.config.clone()) {
        Ok(engine) => Arc::new(engine),
        Err(e @ engine::Error::Locked { .. }) => {
            eprintln!("streamcache: {e}");
            return ExitCode::from(1);
        }
        Err(e @ engine::Error::DataDir { .. }) => {
            eprintln!(
                "streamcache: invalid setting `data_dir` (from {}): {e}",
                loaded.origin("data_dir")
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("streamcache: {e}");
            return ExitCode::from(1);
        }
    };
    let bound = match server::bind(&engine).await {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!(
                "streamcache: invalid setting `{}` (from {}): {e}",
                e.setting,
                loaded.origin(e.setting)
            );
            return ExitCode::from(2);
        }
    };
    engine.set_config_source(source);
    let shutdown = Shutdown::new();
    // Installed before the start (which rebuilds the cache from the log and may take a while):
    // a SIGTERM then stops the process cleanly and a SIGHUP is logged, instead of the default
    // action ending it without a flush.
    let signals = match spawn_signal_handler(&shutdown, engine.clone()) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("streamcache: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    // HTTP answers from here on: probes get `/readyz` 503 while the start rebuilds the cache,
    // and other requests 503 `starting`, instead of connections that hang until it is done.
    let ready_line = bound.ready_line();
    let (http_addr, resp_addr) = (bound.http_addr(), bound.resp_addr());
    let serving = server::serve_http_while_starting(engine.clone(), bound, shutdown.clone());
    if let Err(e) = engine.start(shutdown.signal()).await {
        eprintln!("streamcache: cannot start: {e}");
        signals.abort();
        shutdown.trigger();
        engine.stop().await;
        return ExitCode::from(match e {
            engine::Error::Pipeline(inner) if is_config_error(&inner) => 2,
            engine::Error::Realtime(_) => 2,
            _ => 1,
        });
    }
    engine.supervise(shutdown.clone());
    serving.open();
    // Not ready when a shutdown stopped the start (during the cache rebuild): no ready line.
    if engine.is_ready() {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{ready_line}");
        let _ = out.flush();
        tracing::info!(http = %http_addr, resp = %resp_addr, "ready");
    }
    let served = serving.run().await;
    signals.abort();
    engine.stop().await;
    if let Err(e) = &served {
        tracing::error!(error = %e, "HTTP server failed");
    }
    let fatal = engine.fatal_fault();
    match engine.shutdown() {
        Ok(()) => {
            tracing::info!("shutdown complete");
            if served.is_ok() && fatal.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "flushing storage at shutdown failed");
            ExitCode::from(1)
        }
    }
}

/// Whether a pipeline error is a bad configuration (exit 2) rather than a runtime failure.
fn is_config_error(e: &streamcache::pipeline::Error) -> bool {
    matches!(e, streamcache::pipeline::Error::Invalid { .. })
}

/// Turns SIGINT and SIGTERM into a shutdown trigger, and SIGHUP into a pipeline reload.
fn spawn_signal_handler(
    shutdown: &Shutdown,
    engine: Arc<Engine>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let shutdown = shutdown.clone();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM received"); break; }
                _ = int.recv() => { tracing::info!("SIGINT received"); break; }
                _ = hup.recv() => match engine.reload().await {
                    Ok(reloaded) => tracing::info!(diff = ?reloaded.flows, restart_required = ?reloaded.restart_required, "SIGHUP: pipeline reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: reload rejected; the running flows continue"),
                },
            }
        }
        shutdown.trigger();
    }))
}

/// Logs go to stderr: human-readable (coloured on a terminal) or one JSON object per line.
fn init_tracing(filter: &str, format: LogFormat) {
    use std::io::IsTerminal as _;
    // The storage engine logs every flush and compaction at info; keep it at warn unless the
    // filter names it.
    let quiet = if filter.contains("lsm_tree") || filter.contains("fjall") {
        String::new()
    } else {
        ",lsm_tree=warn,fjall=warn".to_owned()
    };
    let filter = tracing_subscriber::EnvFilter::new(format!("{filter}{quiet}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("streamcache: logging not initialised: {e}");
    }
}
