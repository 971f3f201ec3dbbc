//! The HTTP server.

use std::io::Write as _;
use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::Service as _;
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;

use crate::auth::Scope;
use crate::error::{
    json_config, json_payload_config, path_config, problem_fallback, query_config, ApiError,
};
use crate::state::AppState;

async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}

/// What an instance records in the database when it starts: the running policy in the audit
/// log (when it differs from the last one logged; its sequence number) and, on an instance
/// with no key at all, the bootstrap admin key (its secret). Holds the database's start-up
/// lock ([`hallmark_store::Store::startup_lock`]) throughout, so instances starting together
/// on an empty database create exactly one key and log the policy once.
///
/// # Errors
/// Database failures; failing to log the policy (an instance whose policy cannot be logged
/// does not serve).
pub async fn record_startup(state: &AppState) -> anyhow::Result<(Option<u64>, Option<String>)> {
    let lock = state
        .store
        .startup_lock()
        .await
        .context("taking the start-up lock")?;
    let policy = crate::service::settings_events::record(state, "hallmark serve")
        .await
        .map_err(|e| anyhow::anyhow!("recording the running policy in the audit log: {e}"));
    let key = match policy {
        Ok(_) => create_bootstrap_key(state).await,
        Err(_) => Ok(None),
    };
    lock.release()
        .await
        .context("releasing the start-up lock")?;
    Ok((policy?, key?))
}

async fn create_bootstrap_key(state: &AppState) -> anyhow::Result<Option<String>> {
    if state.store.count_api_keys().await? > 0 {
        return Ok(None);
    }
    let k = crate::service::keys::create_logged(
        state,
        "bootstrap-admin",
        &Scope::ALL,
        None,
        "bootstrap",
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the bootstrap key: {e}"))?;
    Ok(Some(k.secret))
}

/// Binds, prints the listening address (and, on a fresh instance, the bootstrap admin key) to
/// stdout, and serves until SIGINT/SIGTERM.
///
/// # Errors
/// Bind failures and start-up failures.
pub async fn serve(state: AppState) -> anyhow::Result<()> {
    let s = state.settings.clone();
    let listener = TcpListener::bind((s.server.host.as_str(), s.server.port))
        .with_context(|| format!("binding {}:{}", s.server.host, s.server.port))?;
    let addr = listener.local_addr()?;
    if state.identity_is_dev {
        tracing::warn!("{}", crate::state::DEV_IDENTITY_WARNING);
    }
    let (policy_seq, bootstrap) = record_startup(&state).await?;
    if let Some(seq) = policy_seq {
        tracing::info!(
            seq,
            "running policy differs from the last one logged: settings.changed entry appended"
        );
    }
    if let Some(key) = bootstrap {
        println!("bootstrap admin API key (shown once, store it now): {key}");
    }
    println!("hallmark listening on http://{addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, database = %redact(&s.database_url()), "serving");

    if s.metrics.enabled {
        crate::metrics::install().context("installing the metrics recorder")?;
    }
    // Full token buckets are dropped once a minute (memory stays bounded under many keys and
    // client addresses).
    let limits = state.limits.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.prune();
        }
    });
    let data = web::Data::new(state);
    let workers = if s.server.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        s.server.workers
    };
    let console = s.console.clone();
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(json_config())
            .app_data(query_config())
            .app_data(path_config())
            .app_data(json_payload_config())
            .wrap(actix_web::middleware::ErrorHandlers::new().default_handler(problem_fallback))
            .wrap_fn(|req, srv| {
                let start = Instant::now();
                let method = req.method().clone();
                let path = req.path().to_owned();
                // The route pattern, never the raw path: ids do not become label values.
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
                let timer = crate::metrics::RequestTimer::start(method.as_str(), &route);
                let request_id = crate::request_id::from_header(
                    req.headers()
                        .get(crate::request_id::HEADER)
                        .and_then(|v| v.to_str().ok()),
                );
                // Every log line of this request (handlers, services) carries its id.
                let span = tracing::info_span!("request", request_id = %request_id);
                let fut = tracing::Instrument::instrument(srv.call(req), span.clone());
                async move {
                    let mut res = fut.await?;
                    timer.finish(res.status().as_u16());
                    crate::request_id::set(res.headers_mut(), &request_id);
                    span.in_scope(|| {
                        tracing::info!(%method, %path, status = res.status().as_u16(), ms = start.elapsed().as_millis() as u64, "request");
                    });
                    Ok(res)
                }
            })
            .configure(crate::routes::configure)
            .configure(|cfg| crate::console::configure(cfg, &console))
            .default_service(web::to(not_found))
    })
    .workers(workers)
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}

/// Hides the password of a database URL for logging.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
