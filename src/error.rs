//! The one error type of the HTTP surface.
//!
//! Every failure a client can cause or observe is a variant here. Each variant knows its status code
//! and its stable public `error` code; the body is always `{"error": "<code>", "message": "<text>"}`.
//! Server-side causes (store failures, bugs) are logged with their detail and answered with a
//! generic message: internal text never reaches a client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::session::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request's Origin is not allowed to use this broker")]
    OriginDenied,
    #[error("there is no session")]
    NoSession,
    #[error("keys are 1 to 128 characters from A-Z a-z 0-9 . _ -, except . and ..")]
    BadKey,
    #[error("the body is not valid JSON of the expected shape: {0}")]
    BadJson(String),
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("the request body is larger than allowed")]
    BodyTooLarge,
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("the value is larger than {0} bytes")]
    ValueTooLarge(usize),
    #[error("a session holds at most {0} values")]
    TooManyValues(usize),
    #[error("the audience is not a trusted origin")]
    BadAudience,
    #[error("the handoff token is invalid, expired, already used or not meant for this site")]
    InvalidToken,
    #[error("this site already has a different live session; it was kept")]
    SessionConflict,
    #[error("cross-site handoff is not configured on this broker")]
    HandoffDisabled,
    #[error("identity binding is not configured on this broker")]
    IdentityDisabled,
    /// A partner's identity assertion was refused; the rejection gives the code and the status.
    #[error("{0}")]
    IdentityRefused(crate::identity::IdentityRejection),
    #[error("too many requests; retry later")]
    RateLimited,
    #[error("the session store is unavailable; retry later")]
    StoreUnavailable,
    #[error("not found")]
    NotFound,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("an internal error occurred")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::OriginDenied => StatusCode::FORBIDDEN,
            Self::NoSession | Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadKey | Self::BadJson(_) | Self::BadAudience => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyTooLarge | Self::ValueTooLarge(_) | Self::TooManyValues(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::SessionConflict => StatusCode::CONFLICT,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::StoreUnavailable | Self::HandoffDisabled | Self::IdentityDisabled => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::IdentityRefused(rejection) => rejection.status(),
        }
    }

    /// The stable, documented code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OriginDenied => "origin_denied",
            Self::NoSession => "no_session",
            Self::BadKey => "bad_key",
            Self::BadJson(_) => "bad_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BodyTooLarge | Self::ValueTooLarge(_) => "too_large",
            Self::TooManyValues(_) => "too_many_values",
            Self::BodyTimeout => "body_timeout",
            Self::BadAudience => "bad_audience",
            Self::InvalidToken => "invalid_token",
            Self::SessionConflict => "session_conflict",
            Self::HandoffDisabled => "handoff_disabled",
            Self::IdentityDisabled => "identity_disabled",
            Self::RateLimited => "rate_limited",
            Self::StoreUnavailable => "store_unavailable",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal => "internal",
            Self::IdentityRefused(rejection) => rejection.code(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "session store unavailable");
                Self::StoreUnavailable
            }
            StoreError::Internal(cause) => {
                tracing::error!(%cause, "session store failed");
                Self::Internal
            }
        }
    }
}

impl From<crate::identity::IdentityRejection> for ApiError {
    fn from(rejection: crate::identity::IdentityRejection) -> Self {
        Self::IdentityRefused(rejection)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code(), "message": self.to_string() }));
        let mut response = (self.status(), body).into_response();
        if matches!(self, Self::StoreUnavailable | Self::RateLimited) {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}
