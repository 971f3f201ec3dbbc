//! `POST /v1/generate` (render with a registered generator model, signed; an optional
//! `Idempotency-Key` makes retries safe) and `GET /v1/generators`.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::service::{self, GenerateBody};
use crate::state::AppState;

/// Renders an image (image generators: a PNG) or speaks a text (voices: WAV or MP3) with a
/// registered generator; the result is watermarked and C2PA-signed (`c2pa.created`,
/// trainedAlgorithmicMedia, softwareAgent = generator name and `version sha256:<model hash>`,
/// and an `io.hallmark.generation` assertion holding the model hash, the text's SHA-256 — never
/// the text — and the parameters). Text is checked before any work: `empty_text`,
/// `unsupported_characters`, `invalid_speed` (400), `text_too_long` (413); a voice whose files
/// or espeak-ng are missing answers 503 `generator_unavailable`. Nothing is stored on refusal.
#[utoipa::path(post, path = "/v1/generate", tag = "sign",
    request_body = crate::service::GenerateBody,
    responses((status = 200, description = "The signed PNG, WAV or MP3",
        content(("image/png"), ("audio/wav"), ("audio/mpeg")),
        headers(("Hallmark-Asset-Id" = String, description = "New asset id (UUID v7)"),
            ("Hallmark-Manifest-Label" = String, description = "The C2PA manifest label"),
            ("Hallmark-Watermark-Payload" = String, description = "Hex watermark payload")))),
    security(("api_key" = ["sign"])))]
async fn generate(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Sign)?;
    let idem = super::decisions::idempotency_key(&req)?;
    let body: GenerateBody =
        super::read_json(&req, payload, &state, crate::error::JSON_BODY_LIMIT).await?;
    let out = service::generate_idempotent(&state, body, &caller.key_id, idem).await?;
    Ok(super::signed_response(&out).body(out.bytes))
}

/// The registered generators with their parameters, licence, model hash and availability.
#[utoipa::path(get, path = "/v1/generators", operation_id = "listGenerators", tag = "sign",
    responses((status = 200, description = "Generators", body = crate::openapi::schemas::GeneratorList)),
    security(("api_key" = ["sign"])))]
async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Sign)?;
    let list = state
        .generators
        .as_ref()
        .map(|g| g.list())
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "generators": list })))
}

/// `POST /v1/generate`, `GET /v1/generators`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource(
        "/v1/generate",
        "POST",
        web::post().to(generate),
    ))
    .service(super::resource(
        "/v1/generators",
        "GET",
        web::get().to(list),
    ));
}
