//! `GET /openapi.json`.

use axum::Json;

pub(crate) async fn serve() -> Json<serde_json::Value> {
    Json(serde_json::json!({"openapi": "3.0.3"}))
}
