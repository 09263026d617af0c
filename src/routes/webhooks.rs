//! `/webhooks/{provider}/{channel_id}/{action}`: where SMS gateways and voice providers call in.
//!
//! The order matters and is the whole point: find the channel → check authenticity before any side
//! effect (403, a security log line without secrets, nothing written) → read the body within the
//! action's limit (413) → parse (400 with the reason) → store every event idempotently and commit → only
//! then answer the provider in its own format. A provider's retry of the same event gets the same answer
//! and writes nothing. With the database unreachable the answer is 503, so providers that retry will.
//! Triage and case linking run after the answer (and again from the sweeper if this instance dies).
//! Calls (`voice`, `voice-status`, `ivr`) go to [`crate::ivr::respond`] after the same verification.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures_util::StreamExt as _;
use komek_gateways::{AckOutcome, Action, InboundEvent, Provider, Reply, WebhookRequest};

use crate::channels::{self, Channel};
use crate::db::DbError;
use crate::error::{ApiError, ErrorCode};
use crate::intake::{self, IntakeError, sweeper};
use crate::state::AppState;

/// Mounts the webhook route (GET too: Vonage and some gateways deliver inbound SMS by GET).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/webhooks/{provider}/{channel_id}/{action}")
            .route(web::get().to(receive))
            .route(web::post().to(receive)),
    );
}

/// Largest body each action accepts: an Infobip batch of inbound SMS can be long; the rest are small.
fn body_limit(provider: Provider, action: Action) -> usize {
    match (provider, action) {
        (Provider::Infobip, Action::Sms) => 512 * 1024,
        // FreeSWITCH uploads the caller's recording with the request (8 kHz WAV, up to the record limit).
        (Provider::Freeswitch, Action::Ivr) => 16 * 1024 * 1024,
        (_, Action::Sms | Action::Status) => 64 * 1024,
        (_, Action::Voice | Action::VoiceStatus | Action::Ivr) => 32 * 1024,
    }
}

fn reply(answer: Reply) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK))
        .content_type(answer.content_type)
        .body(answer.body)
}

/// A short, non-secret handle of a channel for log lines (the full id can be a credential).
fn channel_tag(channel_id: &str) -> &str {
    channel_id.get(..8).unwrap_or(channel_id)
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::new(ErrorCode::InvalidBody, "the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for StoreError {
    fn from(err: diesel::result::Error) -> Self {
        StoreError::Db(err.into())
    }
}

async fn receive(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (provider_name, channel_id, action_name) = path.into_inner();
    let provider: Provider = provider_name
        .parse()
        .map_err(|_| ApiError::not_found("webhook"))?;
    let action: Action = action_name.parse().map_err(|_| ApiError::not_found("webhook"))?;
    if uuid::Uuid::parse_str(&channel_id).is_err() {
        return Err(ApiError::not_found("channel"));
    }

    let lookup_id = channel_id.clone();
    let channel = state
        .db
        .run(move |conn| channels::find_enabled(conn, &lookup_id, provider).map_err(DbError::from))
        .await;
    let channel: Channel = match channel {
        Ok(Some(channel)) => channel,
        Ok(None) => return Err(ApiError::not_found("channel")),
        Err(err) if err.is_unavailable() => {
            // A caller on the line hears the pre-rendered safe message instead of an error.
            if provider.has_voice() && action.expects_ivr() {
                return Ok(reply(state.ivr.fallback(provider, &channel_id)));
            }
            return Ok(reply(komek_gateways::ack(
                provider,
                action,
                AckOutcome::TemporaryFailure,
            )));
        }
        Err(err) => return Err(ApiError::internal(err)),
    };
    if provider.has_voice() {
        state.ivr.remember_channel(&channel);
    }
    let credentials = channel.credentials(&state.crypto).map_err(|err| {
        tracing::error!(provider = provider.slug(), channel = channel_tag(&channel.id), error = %err, "channel credentials cannot be read");
        ApiError::internal(err)
    })?;

    let body = read_body(payload, body_limit(provider, action)).await?;
    let public = state.settings.public_url.as_str().trim_end_matches('/');
    let url = match req.uri().query() {
        Some(query) => format!("{public}{}?{query}", req.path()),
        None => format!("{public}{}", req.path()),
    };
    let mut webhook = WebhookRequest::new(req.method().as_str(), &url, &body, Utc::now());
    for (name, value) in req.headers() {
        if let Ok(value) = value.to_str() {
            webhook = webhook.with_header(name.as_str(), value);
        }
    }
    if let Some(peer) = req.peer_addr() {
        webhook = webhook.with_remote_ip(peer.ip());
    }

    if let Err(err) = komek_gateways::verify(provider, action, &credentials, &webhook) {
        tracing::warn!(
            security = true,
            provider = provider.slug(),
            action = action.slug(),
            channel = channel_tag(&channel.id),
            reason = err.code(),
            "webhook refused: authenticity check failed"
        );
        return Err(ApiError::of(ErrorCode::WebhookNotVerified));
    }

    let events = komek_gateways::parse(provider, action, &webhook)
        .map_err(|err| ApiError::new(ErrorCode::InvalidWebhook, format!("{} ({})", err, err.code())))?;
    if action.expects_ivr() || events.iter().any(|e| matches!(e, InboundEvent::Call(_))) {
        let answer = crate::ivr::respond(&state, &channel, provider, action, req.uri().query(), events).await;
        return Ok(reply(answer));
    }

    let sms: Vec<_> = events
        .into_iter()
        .filter_map(|event| match event {
            InboundEvent::Sms(sms) => Some(sms),
            // Delivery reports of outbound SMS are recorded by the notifications outbox (not yet built).
            InboundEvent::Status(_) | InboundEvent::Call(_) => None,
        })
        .collect();
    let crypto = state.crypto.clone();
    let store_channel = channel.clone();
    let stored = state
        .db
        .write(move |conn| {
            let mut stored = Vec::with_capacity(sms.len());
            for message in &sms {
                stored.push(intake::store_sms(conn, &crypto, &store_channel, message)?);
            }
            Ok::<_, StoreError>(stored)
        })
        .await;
    let stored = match stored {
        Ok(stored) => stored,
        Err(StoreError::Db(err)) if err.is_unavailable() => {
            tracing::warn!(
                provider = provider.slug(),
                channel = channel_tag(&channel.id),
                "database unavailable: asking the provider to retry"
            );
            return Ok(reply(komek_gateways::ack(
                provider,
                action,
                AckOutcome::TemporaryFailure,
            )));
        }
        Err(err) => return Err(ApiError::internal(err)),
    };
    let new_reports: Vec<String> = stored
        .iter()
        .filter(|s| !s.duplicate)
        .map(|s| s.report_id.clone())
        .collect();
    tracing::info!(
        provider = provider.slug(),
        action = action.slug(),
        channel = channel_tag(&channel.id),
        stored = new_reports.len(),
        duplicates = stored.len() - new_reports.len(),
        "webhook accepted"
    );
    if !new_reports.is_empty() {
        let db = state.db.clone();
        let ctx = state.process_context();
        tokio::spawn(async move {
            for report_id in new_reports {
                sweeper::process_one(&db, &ctx, report_id).await;
            }
        });
    }
    Ok(reply(komek_gateways::ack(provider, action, AckOutcome::Accepted)))
}
