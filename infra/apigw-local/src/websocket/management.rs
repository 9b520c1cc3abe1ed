//! The API Gateway Management API (`@connections`, restJson1), enough for
//! `aws-sdk-apigatewaymanagement`: errors carry `x-amzn-ErrorType` so the SDK
//! reports `GoneException` and friends. SigV4 signatures are not checked.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::Message;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::WsApi;
use crate::ids;

pub(super) async fn at_root(
    State(api): State<Arc<WsApi>>,
    Path(connection_id): Path<String>,
    method: Method,
    body: Body,
) -> Response {
    manage(&api, &connection_id, method, body).await
}

pub(super) async fn at_stage(
    State(api): State<Arc<WsApi>>,
    Path((stage, connection_id)): Path<(String, String)>,
    method: Method,
    body: Body,
) -> Response {
    if stage != api.spec.stage {
        return aws_error(StatusCode::FORBIDDEN, "ForbiddenException", Some("Forbidden"));
    }
    manage(&api, &connection_id, method, body).await
}

async fn manage(api: &WsApi, connection_id: &str, method: Method, body: Body) -> Response {
    let gone = || aws_error(StatusCode::GONE, "GoneException", None);
    let response = match method {
        Method::POST => {
            let limit = api.limits.max_message_bytes;
            let Ok(data) = axum::body::to_bytes(body, limit).await else {
                return aws_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PayloadTooLargeException",
                    Some(&format!("Message too long. Maximum size is {limit} bytes")),
                );
            };
            let Some(connection) = api.registry.get(connection_id) else {
                return gone();
            };
            let message = match String::from_utf8(data.to_vec()) {
                Ok(text) => Message::Text(text.into()),
                Err(_) => Message::Binary(data),
            };
            if !connection.send(message) {
                return gone();
            }
            StatusCode::OK.into_response()
        }
        Method::GET => {
            let Some(connection) = api.registry.get(connection_id) else {
                return gone();
            };
            let info = &connection.info;
            Json(json!({
                "connectedAt": ids::iso_time(info.connected_at),
                "identity": {
                    "sourceIp": info.source_ip,
                    "userAgent": info.user_agent,
                },
                "lastActiveAt": ids::iso_time(info.last_active_at()),
            }))
            .into_response()
        }
        Method::DELETE => {
            // Gone for the Management API at once, even before the socket closes.
            let Some(connection) = api.registry.remove(connection_id) else {
                return gone();
            };
            if !connection.close(1000, "") {
                return gone();
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => {
            return aws_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadRequestException",
                Some("Method not allowed"),
            )
        }
    };
    with_request_id(response)
}

/// A restJson1 error: the type in `x-amzn-ErrorType`, `{"message": …}` in the body.
fn aws_error(status: StatusCode, error_type: &'static str, message: Option<&str>) -> Response {
    let mut response = (status, Json(json!({ "message": message }))).into_response();
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    with_request_id(response)
}

fn with_request_id(mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}
