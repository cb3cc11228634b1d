//! The `streamcache` binary: parse the command line, load configuration, set up logging and
//! signals, and hand over to the library. Exit codes: 0 success, 1 runtime failure (including a
//! data directory locked by another process), 2 bad usage or configuration.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use streamcache::cli::{
    self, BenchCommand, BenchE2eArgs, Command, ConfigCommand, ProduceArgs, ServeArgs, TransformArgs,
};
use streamcache::clock::SystemClock;
use streamcache::config::{self, LogFormat, Overrides};
use streamcache::engine::{self, Engine};
use streamcache::server;
use streamcache::shutdown::Shutdown;
use streamcache::{bench, loadgen};

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
        Some(Command::Produce(args)) => produce(args),
        Some(Command::Bench(BenchCommand::E2e(args))) => bench_e2e(args),
        Some(Command::Serve(args)) => serve(&args, &parsed.overrides),
        Some(Command::Transform(args)) => transform(&args),
        None => serve(&parsed.cli.serve, &parsed.overrides),
    }
}

/// `streamcache transform`: 0 with the output on stdout; 2 with the error on stderr for an
/// unreadable file, a rejected spec, bad input JSON or a failed transform.
fn transform(args: &TransformArgs) -> ExitCode {
    match run_transform(args) {
        Ok(output) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{output}");
            let _ = out.flush();
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("streamcache transform: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_transform(args: &TransformArgs) -> Result<String, String> {
    use std::io::Read as _;
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let spec_text = read(&args.spec)?;
    let spec = streamcache::transform::Spec::parse_str(&spec_text)
        .map_err(|e| format!("{}: {e}", args.spec.display()))?;
    let (input_name, input_text) = match &args.input {
        Some(path) => (path.display().to_string(), read(path)?),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            ("standard input".to_owned(), text)
        }
    };
    let input: serde_json::Value = serde_json::from_str(&input_text)
        .map_err(|e| format!("{input_name}: not valid JSON: {e}"))?;
    let context = match &args.context {
        Some(path) => serde_json::from_str(&read(path)?)
            .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?,
        None => serde_json::Value::Null,
    };
    let output = spec
        .apply_with_context(&input, &context)
        .map_err(|e| e.to_string())?;
    serde_json::to_string(&output).map_err(|e| format!("cannot print the output: {e}"))
}

/// `streamcache produce`: sends orders and prints the summary; exit 1 if any order failed.
fn produce(args: ProduceArgs) -> ExitCode {
    let options = loadgen::ProduceOptions {
        url: args.url,
        topic: args.topic,
        rate: args.rate,
        count: args.count,
        seed: args.seed,
        batch: args.batch,
        auth_token: args.auth_token,
        progress: !args.quiet,
    };
    let Some(runtime) = client_runtime(tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::from(1);
    };
    runtime.block_on(async {
        // Ctrl-C stops the run early; the summary still prints.
        let shutdown = Shutdown::new();
        let trigger = shutdown.clone();
        let signals = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                trigger.trigger();
            }
        });
        let result = loadgen::produce(&options, SystemClock::shared(), shutdown.signal()).await;
        signals.abort();
        match result {
            Ok(summary) => {
                println!("{summary}");
                if summary.is_clean() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("streamcache produce: {e}");
                ExitCode::from(2)
            }
        }
    })
}

/// Builds a runtime for a client command, printing why when it cannot.
fn client_runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .inspect_err(|e| eprintln!("streamcache: cannot start the async runtime: {e}"))
        .ok()
}

/// `streamcache bench e2e`: runs the benchmark, prints the table and writes the plot; exit 1 if
/// any order failed or any event was lost, 2 for unusable options.
fn bench_e2e(args: BenchE2eArgs) -> ExitCode {
    let options = bench::E2eOptions {
        url: args.url,
        seconds: args.seconds,
        rates: args.rates,
        max: args.max,
        seed: args.seed,
    };
    // Multi-threaded: the in-process server and the clients share the runtime.
    let Some(runtime) = client_runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::from(1);
    };
    let result = runtime.block_on(bench::e2e(&options, SystemClock::shared()));
    match result {
        Ok(report) => {
            print!("{}", report.table());
            if let Err(e) = bench::write_plot(&report, &args.out) {
                eprintln!("streamcache bench e2e: {e}");
                return ExitCode::from(1);
            }
            println!("plot: {}", args.out.display());
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e @ bench::Error::Option { .. }) | Err(e @ bench::Error::Url(_)) => {
            eprintln!("streamcache bench e2e: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("streamcache bench e2e: {e}");
            ExitCode::from(1)
        }
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
    if let Err(e) = engine.start(shutdown.signal()).await {
        eprintln!("streamcache: cannot start: {e}");
        shutdown.trigger();
        engine.stop().await;
        return ExitCode::from(match e {
            engine::Error::Pipeline(inner) if is_config_error(&inner) => 2,
            engine::Error::Realtime(_) => 2,
            _ => 1,
        });
    }
    engine.supervise(shutdown.clone());
    let signals = match spawn_signal_handler(&shutdown, engine.clone()) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("streamcache: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", bound.ready_line());
        let _ = out.flush();
    }
    tracing::info!(http = %bound.http_addr(), resp = %bound.resp_addr(), "ready");
    let served = server::run(engine.clone(), bound, shutdown.signal()).await;
    signals.abort();
    engine.stop().await;
    if let Err(e) = &served {
        tracing::error!(error = %e, "HTTP server failed");
    }
    match engine.shutdown() {
        Ok(()) => {
            tracing::info!("shutdown complete");
            if served.is_ok() {
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
                    Ok(diff) => tracing::info!(?diff, "SIGHUP: pipeline reloaded"),
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
