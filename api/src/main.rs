//! `hallmark`: the service and its offline CLI.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hallmark_api::batch::BatchOptions;
use hallmark_api::keys_cli::KeysCommand;
use hallmark_api::service::{self, SignMetadata};
use hallmark_api::settings::Settings;
use hallmark_api::state::AppState;

#[derive(Parser)]
#[command(
    name = "hallmark",
    version,
    about = "Content provenance and synthetic-media detection"
)]
struct Cli {
    /// Settings file (default: ./hallmark.toml when present).
    #[arg(long, global = true, env = "HALLMARK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve,
    /// Watermark and sign generated images or audio (same code path as POST /v1/sign). One
    /// file: -o is the output file. Several files or a directory: -o is a directory, each
    /// signed file keeps its relative path, one JSON line per file; exit status 1 only when a
    /// file could not be signed.
    Sign {
        /// Input files or directories (JPEG, PNG, WebP, WAV, MP3, M4A); outputs keep the format.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output file (one input) or directory (several, or a directory).
        #[arg(short, long)]
        output: PathBuf,
        /// Walk directories recursively.
        #[arg(short, long)]
        recursive: bool,
        /// Files signed concurrently.
        #[arg(short, long, default_value_t = 4)]
        jobs: usize,
        /// Product or service that generated the media.
        #[arg(long)]
        generator: Option<String>,
        /// Model that generated the media (the manifest's softwareAgent; required, as in
        /// POST /v1/sign).
        #[arg(long)]
        model: String,
        /// Model version.
        #[arg(long)]
        model_version: Option<String>,
        /// IPTC digital source type.
        #[arg(long, default_value = "trainedAlgorithmicMedia")]
        digital_source_type: String,
        /// Title recorded in the manifest.
        #[arg(long)]
        title: Option<String>,
        /// Training/data-mining permission recorded in a `c2pa.training-mining` assertion,
        /// USE=PERMISSION (uses: ai_training, ai_generative_training, ai_inference, data_mining;
        /// permissions: allowed, notAllowed, constrained). Repeatable.
        #[arg(long = "training-mining", value_name = "USE=PERMISSION")]
        training_mining: Vec<String>,
    },
    /// Verify files (same report as POST /v1/verify; reports are stored). One file: its
    /// verdict (or --json, the report). Several files or a directory: one result per file as
    /// JSON Lines (or CSV for an --output ending in .csv), a progress bar on a terminal and a
    /// summary; exit status 1 only when a file could not be verified.
    Verify {
        /// Files or directories to verify.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the full report JSON (single file).
        #[arg(long)]
        json: bool,
        /// Walk directories recursively.
        #[arg(short, long)]
        recursive: bool,
        /// Files verified concurrently.
        #[arg(short, long, default_value_t = 4)]
        jobs: usize,
        /// Write results here (`.csv`: CSV; otherwise JSON Lines) instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// API keys: create, list, revoke, rotate.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The watermark alone (no manifest): embed or detect.
    Watermark {
        #[command(subcommand)]
        command: WatermarkCommand,
    },
    /// The audit log: export it, or verify an export offline.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Render an image, or speak a text, with a registered generator and sign the result
    /// (same code path as POST /v1/generate).
    Generate {
        /// Generator name (see the generator registry / GET /v1/generators).
        #[arg(long)]
        generator: String,
        /// Image: seed (same seed, same image).
        #[arg(long)]
        seed: Option<u64>,
        /// Image: width in pixels (default 512).
        #[arg(long)]
        width: Option<u32>,
        /// Image: height in pixels (default 512).
        #[arg(long)]
        height: Option<u32>,
        /// Speech: the text to speak.
        #[arg(long, conflicts_with = "text_file")]
        text: Option<String>,
        /// Speech: read the text to speak from this UTF-8 file ("-" = standard input).
        #[arg(long)]
        text_file: Option<PathBuf>,
        /// Speech: speaking rate, 0.5-2.0 (default 1).
        #[arg(long)]
        speed: Option<f64>,
        /// Output file: PNG for images; for speech .wav or .mp3 (the extension picks the
        /// format; default WAV).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Detector models: list them, evaluate them on labelled media, calibrate them.
    Detectors {
        #[command(subcommand)]
        command: DetectorsCommand,
    },
    /// Certificates.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Internal commands (used by the service itself).
    #[command(hide = true)]
    Internal {
        #[command(subcommand)]
        command: InternalCommand,
    },
}

#[derive(Subcommand)]
enum WatermarkCommand {
    /// Embed the keyed watermark into an image (JPEG, PNG, WebP) or audio file (WAV, MP3).
    Embed {
        /// Input file.
        input: PathBuf,
        /// Output file (same format).
        #[arg(short, long)]
        output: PathBuf,
        /// Payload in hex: up to 64 bits for images, 32 for audio (default: random).
        #[arg(long)]
        payload: Option<String>,
    },
    /// Detect the watermark; prints {detected, payload, bit_agreement, p_value}.
    Detect {
        /// File to examine.
        file: PathBuf,
        /// Print JSON (the default and only format; accepted for compatibility).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write every leaf and checkpoint of the configured database's log as JSON Lines.
    Export {
        /// Output file (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Verify an export offline (no database): recompute the tree, check every checkpoint;
    /// exit status 1 if anything fails. Hash-chain exports of older versions verify too.
    Verify {
        /// The export.
        file: PathBuf,
        /// The log's verifier key (default: this instance's key).
        #[arg(long)]
        verifier_key: Option<PathBuf>,
    },
    /// Print the log's note verifier key (`name+id+key`), to publish for auditors.
    PublicKey,
    /// Verify a decision receipt offline; exit status 1 naming the problem.
    VerifyReceipt {
        /// A receipt, or a POST /v1/decisions response holding one.
        file: PathBuf,
        /// File holding the log's verifier key.
        #[arg(long)]
        verifier_key: PathBuf,
    },
    /// Check a running log from outside: signature, consistency with the checkpoint held in
    /// --state, every entry; exit status 1 naming the problem (run it from cron).
    Monitor {
        /// Base URL of the service (http://…).
        #[arg(long)]
        url: String,
        /// API key with the `audit` scope.
        #[arg(long, env = "HALLMARK_API_KEY")]
        api_key: String,
        /// State file: the last verified checkpoint and the leaf hashes seen.
        #[arg(long)]
        state: PathBuf,
        /// File holding the log's verifier key.
        #[arg(long)]
        verifier_key: PathBuf,
    },
}

/// Media kind filter for `detectors eval`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum EvalKind {
    Image,
    Audio,
}

#[derive(Subcommand)]
enum DetectorsCommand {
    /// List the registry's models with their calibration (loads them).
    List,
    /// Score a labelled folder and print AUC (95 % CI), EER, TPR at 1 % / 5 % FPR overall,
    /// per generator and per format.
    Eval {
        /// Folder the labels' `file` paths are relative to.
        dir: PathBuf,
        /// Tab-separated labels: `file`, `label` (real|synthetic), optional `generator`, `format`.
        #[arg(long)]
        labels: PathBuf,
        /// Print JSON (metrics and per-file results) instead of tables.
        #[arg(long)]
        json: bool,
        /// Also draw the overall ROC curve to this PNG.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Score only files of this media kind (the others are left out of every table).
        #[arg(long, value_enum)]
        kind: Option<EvalKind>,
    },
    /// Refit a model's Platt calibration and thresholds on a deployment's labelled media.
    Calibrate {
        /// Folder the labels' `file` paths are relative to.
        dir: PathBuf,
        /// Tab-separated labels, as for `eval`.
        #[arg(long)]
        labels: PathBuf,
        /// Model name in the registry.
        #[arg(long)]
        model: String,
        /// False-positive rate on real media at the likely_synthetic threshold.
        #[arg(long, default_value_t = 0.02)]
        fpr: f64,
        /// False-positive rate at the inconclusive threshold.
        #[arg(long, default_value_t = 0.20)]
        fpr_inconclusive: f64,
        /// Write the result into the registry (otherwise print it).
        #[arg(long)]
        write: bool,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a development CA and signing certificate (untrusted outside this instance).
    Dev {
        /// Output directory (existing files there are kept).
        #[arg(long, default_value = "./certs")]
        dir: PathBuf,
        /// Organization (O=) of both certificates.
        #[arg(long, default_value = "Hallmark Development")]
        organization: String,
        /// Signature algorithm of both keys: es256 (P-256), es384 (P-384) or ed25519.
        #[arg(long, value_enum, default_value = "es256")]
        alg: DevAlg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DevAlg {
    Es256,
    Es384,
    Ed25519,
}

#[derive(Subcommand)]
enum InternalCommand {
    /// Serve media jobs (decoding, C2PA validation) from stdin under resource limits: the
    /// service's worker processes.
    Worker,
}

/// `println!` that returns the write error instead of panicking (a closed pipe, as in
/// `hallmark verify --json f | head`, ends the command quietly instead of a panic).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*)?;
    }};
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HALLMARK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    // `HALLMARK_LOG_FORMAT=json`: one JSON object per line (timestamp, level, target, fields,
    // and the enclosing spans, e.g. the request's `request_id`), for log shippers.
    let json = std::env::var("HALLMARK_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Writes a signed file atomically and prints what identifies it; service errors keep their
/// stable code in the message.
fn write_signed(
    out: Result<service::SignOutput, hallmark_api::error::ApiError>,
    output: &std::path::Path,
) -> anyhow::Result<()> {
    let out = out.map_err(|e| anyhow::anyhow!("{} ({})", e, e.code_and_status().0))?;
    hallmark_api::tools::write_atomic(output, &out.bytes)?;
    out!("asset {}", out.asset_id);
    out!("manifest {}", out.manifest_label);
    out!("watermark payload {}", out.payload);
    Ok(())
}

fn read_input(path: &PathBuf, limit: usize) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > limit as u64 {
        anyhow::bail!(
            "{} is {} bytes, over the {limit} byte limit (server.max_upload_bytes)",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load(cli.config.as_deref()).context("loading settings")?;
    match cli.command {
        Command::Internal {
            command: InternalCommand::Worker,
        } => hallmark_api::worker::child::worker_main(),
        Command::Certs {
            command:
                CertsCommand::Dev {
                    dir,
                    organization,
                    alg,
                },
        } => {
            let existed = dir.join("signing-key.pem").exists();
            let alg = match alg {
                DevAlg::Es256 => hallmark_provenance::SignatureAlgorithm::Es256,
                DevAlg::Es384 => hallmark_provenance::SignatureAlgorithm::Es384,
                DevAlg::Ed25519 => hallmark_provenance::SignatureAlgorithm::Ed25519,
            };
            let p = hallmark_provenance::generate_dev_identity_with(&dir, &organization, alg)?;
            if existed {
                out!(
                    "kept the existing development identity in {}",
                    dir.display()
                );
            }
            out!("CA certificate:    {}", p.ca_cert.display());
            out!("signing chain:     {}", p.chain.display());
            out!("signing key:       {}", p.key.display());
            out!("These are DEVELOPMENT credentials: signatures validate but are untrusted elsewhere.");
            Ok(())
        }
        Command::Watermark {
            command:
                WatermarkCommand::Embed {
                    input,
                    output,
                    payload,
                },
        } => {
            let p = hallmark_api::tools::watermark_embed(
                &settings,
                &input,
                &output,
                payload.as_deref(),
            )?;
            out!("{}", serde_json::json!({ "payload": p }));
            Ok(())
        }
        Command::Watermark {
            command: WatermarkCommand::Detect { file, json: _ },
        } => {
            let r = hallmark_api::tools::watermark_detect(&settings, &file)?;
            out!("{}", serde_json::to_string_pretty(&r)?);
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { file, verifier_key },
        } => {
            let verifier = match verifier_key {
                Some(p) => hallmark_api::audit_tools::read_verifier_key(&p)?,
                None => hallmark_api::service::audit::load_log_key(&settings)?.verifier(),
            };
            let report = hallmark_api::audit_tools::verify_export(&file, verifier)?;
            out!("{}", serde_json::to_string_pretty(&report)?);
            if !report.valid() {
                anyhow::bail!("the audit log export does not verify (see first_failure)");
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::PublicKey,
        } => {
            let key = hallmark_api::service::audit::load_log_key(&settings)?;
            out!("{}", key.verifier().to_vkey());
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::VerifyReceipt { file, verifier_key },
        } => {
            let v = hallmark_api::audit_tools::read_verifier_key(&verifier_key)?;
            let r = hallmark_api::audit_tools::verify_receipt(&file, &v)?;
            out!("{r}");
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Monitor {
                    url,
                    api_key,
                    state,
                    verifier_key,
                },
        } => {
            let v = hallmark_api::audit_tools::read_verifier_key(&verifier_key)?;
            let r = tokio::task::spawn_blocking(move || {
                hallmark_api::audit_tools::monitor(&url, &api_key, &state, &v)
            })
            .await??;
            out!("{r}");
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Export { output },
        } => {
            let store = hallmark_store::Store::connect(&settings.database_url()).await?;
            let key = hallmark_api::service::audit::load_log_key(&settings)?;
            let log = hallmark_store::AuditLog::start(
                store,
                key,
                hallmark_store::AuditLogConfig::default(),
            )
            .await?;
            let n = match output {
                Some(path) => {
                    let tmp = hallmark_api::tools::temp_sibling(&path);
                    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
                    let n = hallmark_api::audit_tools::export(&log, &mut f).await?;
                    drop(f);
                    std::fs::rename(&tmp, &path)?;
                    n
                }
                None => {
                    hallmark_api::audit_tools::export(&log, &mut std::io::stdout().lock()).await?
                }
            };
            eprintln!("exported {n} audit entries");
            Ok(())
        }
        Command::Generate {
            generator,
            seed,
            width,
            height,
            text,
            text_file,
            speed,
            output,
        } => {
            let text = match text_file {
                Some(p) => Some(hallmark_api::tools::read_text_arg(&p)?),
                None => text,
            };
            let speech = text.is_some() || speed.is_some();
            let format = match (speech, output.extension().and_then(|e| e.to_str())) {
                (true, Some(e)) if e.eq_ignore_ascii_case("mp3") => Some("mp3".to_owned()),
                (true, _) => Some("wav".to_owned()),
                (false, _) => None,
            };
            let expected = match format.as_deref() {
                Some("mp3") => hallmark_media::MediaFormat::Mp3,
                Some(_) => hallmark_media::MediaFormat::Wav,
                None => hallmark_media::MediaFormat::Png,
            };
            hallmark_api::tools::check_output_name(&output, expected)?;
            settings.detectors.enabled = false;
            let state = AppState::init(settings).await?;
            // Images keep the CLI's historical default seed 0 (reproducible); voices take none.
            let seed = if speech {
                seed
            } else {
                Some(seed.unwrap_or(0))
            };
            let out = service::generate(
                &state,
                service::GenerateBody {
                    generator,
                    seed,
                    width,
                    height,
                    text,
                    format,
                    speed,
                    title: None,
                },
                "cli",
            )
            .await;
            write_signed(out, &output)
        }
        Command::Detectors { command } => run_detectors(&settings, command).await,
        Command::Serve => {
            let state = AppState::init(settings).await?;
            hallmark_api::server::serve(state).await
        }
        Command::Keys { command } => hallmark_api::keys_cli::run(settings, command).await,
        Command::Sign {
            inputs,
            output,
            recursive,
            jobs,
            generator,
            model,
            model_version,
            digital_source_type,
            title,
            training_mining,
        } => {
            let mut tm = std::collections::BTreeMap::new();
            for entry in &training_mining {
                let (k, v) = entry.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("--training-mining expects USE=PERMISSION, got '{entry}'")
                })?;
                tm.insert(k.trim().to_owned(), v.trim().to_owned());
            }
            let meta = SignMetadata {
                generator,
                model,
                model_version,
                digital_source_type: Some(digital_source_type),
                title,
                training_mining: (!tm.is_empty()).then_some(tm),
            };
            settings.detectors.enabled = false;
            let opts = BatchOptions::new(inputs, recursive, jobs, Some(output.clone()));
            if opts.is_batch() {
                return hallmark_api::batch::cli(settings, opts, Some(meta)).await;
            }
            let inputs = opts.paths;
            let bytes = read_input(&inputs[0], settings.server.max_upload_bytes)?;
            if let Some(format) = hallmark_media::sniff(&bytes) {
                hallmark_api::tools::check_output_name(&output, format)?;
            }
            let state = AppState::init(settings).await?;
            let out = service::sign(&state, bytes, meta, "cli").await;
            write_signed(out, &output)
        }
        Command::Verify {
            paths,
            json,
            recursive,
            jobs,
            output,
        } => {
            let opts = BatchOptions::new(paths, recursive, jobs, output);
            if opts.is_batch() || opts.output.is_some() {
                return hallmark_api::batch::cli(settings, opts, None).await;
            }
            let file = &opts.paths[0];
            let bytes = read_input(file, settings.server.max_upload_bytes)?;
            let state = AppState::init(settings).await?;
            let report = service::verify(&state, bytes, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code_and_status().0))?;
            if json {
                out!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                out!("verification {}", report.id);
                out!("verdict: {}", report.verdict.label);
                for r in &report.verdict.reasons {
                    out!("  - {r}");
                }
            }
            Ok(())
        }
    }
}

async fn run_detectors(settings: &Settings, command: DetectorsCommand) -> anyhow::Result<()> {
    use hallmark_api::detectors_cli as dc;
    let pool = dc::load_pool(settings).await?;
    match command {
        DetectorsCommand::List => {
            out!("{}", serde_json::to_string_pretty(&pool.models())?);
        }
        DetectorsCommand::Eval {
            dir,
            labels,
            json,
            plot,
            kind,
        } => {
            let labels = dc::read_labels(&labels)?;
            let only = kind.map(|k| match k {
                EvalKind::Image => hallmark_media::MediaKind::Image,
                EvalKind::Audio => hallmark_media::MediaKind::Audio,
            });
            let scored = dc::score_all(settings, &pool, &dir, &labels, only).await?;
            let report = dc::evaluate(&scored);
            if let Some(p) = plot {
                let (s, l): (Vec<f64>, Vec<bool>) = scored
                    .iter()
                    .filter_map(|s| {
                        let p = s.detection.as_ref().ok()?.probability?;
                        Some((f64::from(p), s.synthetic))
                    })
                    .unzip();
                dc::plot_roc(&p, &s, &l)?;
            }
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "metrics": report,
                        "files": scored,
                    }))?
                );
            } else {
                out!("{}", dc::render(&report));
            }
        }
        DetectorsCommand::Calibrate {
            dir,
            labels,
            model,
            fpr,
            fpr_inconclusive,
            write,
        } => {
            let labels = dc::read_labels(&labels)?;
            let scored = dc::score_all(settings, &pool, &dir, &labels, None).await?;
            let cal = dc::calibrate(
                &settings.detectors.registry,
                &model,
                &scored,
                fpr,
                fpr_inconclusive,
                write,
            )?;
            out!("[model.calibration]\n{}", toml::to_string(&cal)?);
            if write {
                eprintln!(
                    "wrote the calibration of `{model}` to {}",
                    settings.detectors.registry.display()
                );
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Internal {
        command: InternalCommand::Worker,
    } = cli.command
    {
        // A worker is single-threaded and has no async runtime: its address-space limit
        // counts every thread's stack and malloc arena.
        return match hallmark_api::worker::child::worker_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
