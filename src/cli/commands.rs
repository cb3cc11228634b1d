//! The client subcommands' handlers — `transform`, `produce` and `bench e2e` — each taking
//! its parsed arguments and returning the process exit code; `main.rs` only dispatches to them.
//! `serve` stays in `main.rs`, which owns tracing and signals.

use std::io::Write as _;
use std::process::ExitCode;

use crate::cli::{BenchE2eArgs, ProduceArgs, TransformArgs};
use crate::clock::SystemClock;
use crate::shutdown::Shutdown;
use crate::{bench, loadgen};

/// `streamcache transform`: 0 with the output on stdout; 2 with the error on stderr for an
/// unreadable file, a rejected spec, bad input JSON or a failed transform.
pub fn transform(args: &TransformArgs) -> ExitCode {
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

/// Longest input or context document `streamcache transform` reads, from a file or standard
/// input: the longest record a flow can read from the log ([`crate::log::RECORD_BYTES_MAX`]), so
/// what the command takes is what a flow's transform could be given.
pub const TRANSFORM_INPUT_BYTES_MAX: usize = 8 * 1024 * 1024;

const _: () = assert!(TRANSFORM_INPUT_BYTES_MAX as u64 == crate::log::RECORD_BYTES_MAX);

fn run_transform(args: &TransformArgs) -> Result<String, String> {
    use std::io::Read as _;
    let read = |path: &std::path::Path, max: usize| {
        crate::files::read_text_at_most(path, max)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let spec_text = read(&args.spec, crate::transform::SPEC_BYTES_MAX)?;
    let spec = crate::transform::Spec::parse_str(&spec_text)
        .map_err(|e| format!("{}: {e}", args.spec.display()))?;
    let (input_name, input_text) = match &args.input {
        Some(path) => (
            path.display().to_string(),
            read(path, TRANSFORM_INPUT_BYTES_MAX)?,
        ),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .take(TRANSFORM_INPUT_BYTES_MAX as u64 + 1)
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            if text.len() > TRANSFORM_INPUT_BYTES_MAX {
                return Err(format!(
                    "cannot read standard input: it is longer than the limit of \
                     {TRANSFORM_INPUT_BYTES_MAX} bytes"
                ));
            }
            ("standard input".to_owned(), text)
        }
    };
    let input: serde_json::Value = serde_json::from_str(&input_text)
        .map_err(|e| format!("{input_name}: not valid JSON: {e}"))?;
    let context = match &args.context {
        Some(path) => serde_json::from_str(&read(path, TRANSFORM_INPUT_BYTES_MAX)?)
            .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?,
        None => serde_json::Value::Null,
    };
    let output = spec
        .apply_with_context(&input, &context)
        .map_err(|e| e.to_string())?;
    serde_json::to_string(&output).map_err(|e| format!("cannot print the output: {e}"))
}

/// `streamcache produce`: sends orders and prints the summary; exit 1 if any order failed.
pub fn produce(args: ProduceArgs) -> ExitCode {
    for warning in crate::cli::unknown_env_vars(std::env::vars_os().map(|(name, _)| name)) {
        eprintln!("streamcache produce: warning: {warning}");
    }
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
pub fn bench_e2e(args: BenchE2eArgs) -> ExitCode {
    let options = bench::E2eOptions {
        url: args.url,
        seconds: args.seconds,
        rates: args.rates,
        batched: args.batched,
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
