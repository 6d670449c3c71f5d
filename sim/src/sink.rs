//! A webhook receiver for tests (forwarding targets, echo callbacks): records every POST and
//! can refuse the next ones.

use crate::router::header_map;
use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::Router;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Clone)]
pub struct Sink {
    pub url: String,
    inner: Arc<Mutex<SinkState>>,
}

#[derive(Default)]
struct SinkState {
    received: Vec<(HashMap<String, String>, String)>,
    /// The path and query of each accepted delivery, in the same order.
    paths: Vec<String>,
    fail_next: u32,
    /// Accepted deliveries are answered 204 without a body (and so without a length).
    no_content: bool,
}

impl Sink {
    pub async fn start() -> std::io::Result<Sink> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let inner: Arc<Mutex<SinkState>> = Arc::default();
        let state = inner.clone();
        let app = Router::new().fallback(move |req: Request<Body>| {
            let state = state.clone();
            async move {
                let headers = header_map(req.headers());
                let path = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let body = to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
                let mut st = lock(&state);
                if st.fail_next > 0 {
                    st.fail_next -= 1;
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                st.received
                    .push((headers, String::from_utf8_lossy(&body).into_owned()));
                st.paths.push(path);
                if st.no_content {
                    StatusCode::NO_CONTENT
                } else {
                    StatusCode::OK
                }
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Sink { url, inner })
    }

    /// Headers (lower-case names) and body of every accepted delivery.
    pub fn received(&self) -> Vec<(HashMap<String, String>, String)> {
        lock(&self.inner).received.clone()
    }

    /// The path (and query) each accepted delivery was posted to.
    pub fn paths(&self) -> Vec<String> {
        lock(&self.inner).paths.clone()
    }

    /// Answers the deliveries it accepts with 204 No Content (no body, no `content-length`)
    /// instead of 200.
    pub fn answer_no_content(&self, on: bool) {
        lock(&self.inner).no_content = on;
    }

    /// Answers 503 to the next `n` deliveries.
    pub fn fail_next(&self, n: u32) {
        lock(&self.inner).fail_next = n;
    }
}

fn lock(m: &Mutex<SinkState>) -> MutexGuard<'_, SinkState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
