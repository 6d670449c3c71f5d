//! Media: multipart upload, download links (fetched with `x-user: <access token>`) and the
//! test images the simulator serves.

use crate::oauth::authed;
use crate::router::{fail, field, invalid, missing, Out, Req};
use crate::state::{Body, DownloadLink, Media, Shared};
use crate::{now, now_ms};
use axum::body::Body as HttpBody;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;

pub const MAX_IMAGE: usize = 3 * 1024 * 1024;
/// Download links work for 24 h.
const LINK_TTL: u64 = 86_400;

/// A valid 1x1 transparent PNG.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// POST `/business/message/media/upload/` (multipart: `business_id`, `file`, `media_type`).
pub async fn upload(shared: &Shared, headers: &HashMap<String, String>, req: Request) -> Out {
    let Ok(mut form) = Multipart::from_request(req, &()).await else {
        return fail(40002, "The request body must be multipart/form-data.");
    };
    let mut text: HashMap<String, String> = HashMap::new();
    let mut file: Option<(Vec<u8>, String)> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return fail(40907, "File size exceeds the limit of 3 MB.")
            }
            Err(_) => return fail(40002, "The multipart body is malformed."),
        };
        let name = field.name().unwrap_or("").to_string();
        let content_type = field.content_type().unwrap_or("").to_string();
        let bytes = match field.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return fail(40907, "File size exceeds the limit of 3 MB.")
            }
            Err(_) => return fail(40002, "The multipart body is malformed."),
        };
        if name == "file" {
            file = Some((bytes, content_type));
        } else {
            text.insert(name, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    let mut st = shared.lock();
    let biz = authed(
        &st,
        headers,
        text.get("business_id").map(String::as_str),
        "message.list.send",
    )?;
    match text.get("media_type").map(String::as_str) {
        None | Some("") => return missing("media_type"),
        Some("IMAGE") => {}
        Some(_) => return invalid("media_type"),
    }
    let Some((bytes, declared)) = file else {
        return missing("file");
    };
    let kind = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        "image/jpeg"
    } else {
        return fail(40908, "File type is not supported: JPG or PNG only.");
    };
    if !(declared.is_empty() || declared.starts_with("image/")) {
        return fail(40908, "File type is not supported: JPG or PNG only.");
    }
    if bytes.len() > MAX_IMAGE {
        return fail(40907, "File size exceeds the limit of 3 MB.");
    }
    let id = st.snowflake();
    st.media.insert(
        id.clone(),
        Media {
            owner: biz,
            bytes,
            content_type: kind.into(),
            created_ms: now_ms(),
        },
    );
    Ok(json!({"media_id": id}))
}

/// POST `/business/message/media/download/`: a 24 h link to media of a message in one of the
/// business's conversations.
pub fn download(shared: &Shared, rq: &Req) -> Out {
    let b = rq.json()?;
    let mut st = shared.lock();
    let biz = authed(
        &st,
        &rq.headers,
        b.get("business_id").and_then(|v| v.as_str()),
        "message.list.read",
    )?;
    let conv = field(&b, "conversation_id")?;
    let message_id = field(&b, "message_id")?;
    let media_id = field(&b, "media_id")?;
    let media_type = field(&b, "media_type")?;
    if !matches!(media_type, "IMAGE" | "VIDEO") {
        return invalid("media_type");
    }
    // Only images are stored; a VIDEO request never finds its media.
    let found = st
        .conversation(&biz, conv)
        .and_then(|c| c.find(message_id))
        .is_some_and(|m| media_type == "IMAGE" && m.body == Body::Image(media_id.into()))
        && st.media.contains_key(media_id);
    if !found {
        return fail(
            40007,
            "The media does not exist in this message and conversation.",
        );
    }
    let token = st.random_alnum(32);
    let expires_at = now() + LINK_TTL;
    st.downloads.insert(
        token.clone(),
        DownloadLink {
            media_id: media_id.into(),
            business_id: biz,
            expires_at,
        },
    );
    Ok(json!({
        "download_url": format!("{}/_sim/media/{token}?x-expires={expires_at}", shared.origin)
    }))
}

/// GET of a download link: the bytes, for a live access token of that business in `x-user`.
pub fn serve_download(shared: &Shared, token: &str, headers: &HeaderMap) -> Response {
    let st = shared.lock();
    let Some(link) = st.downloads.get(token) else {
        return (StatusCode::NOT_FOUND, "no such media").into_response();
    };
    let user = headers
        .get("x-user")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let allowed = st
        .access
        .get(user)
        .is_some_and(|a| a.expires_at > now() && st.grants[&a.grant].open_id == link.business_id);
    if !allowed || link.expires_at <= now() {
        return (StatusCode::FORBIDDEN, "forbidden").into_response();
    }
    match st.media.get(&link.media_id) {
        Some(m) => (
            StatusCode::OK,
            [("content-type", m.content_type.clone())],
            m.bytes.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such media").into_response(),
    }
}

/// Test images: `ok.png`, `ok.jpg`, `big.jpg` (over 3 MB), `stream.jpg` (5 MB, chunked, no
/// content-length), `text.png` (not an image).
pub fn test_image(name: &str) -> Response {
    let (ct, bytes): (&str, Vec<u8>) = match name {
        "ok.png" => ("image/png", PNG_1X1.to_vec()),
        "ok.jpg" => (
            "image/jpeg",
            [&b"\xFF\xD8\xFF\xE0"[..], &[0u8; 64]].concat(),
        ),
        "big.jpg" => (
            "image/jpeg",
            [&b"\xFF\xD8\xFF\xE0"[..], &vec![0u8; MAX_IMAGE + 10]].concat(),
        ),
        "text.png" => ("image/png", b"hello, not an image".to_vec()),
        // A relative redirect: the Worker resolves it against this URL and checks it again.
        "moved.png" => {
            return (
                StatusCode::FOUND,
                [("location", "../images/ok.png?from=moved")],
            )
                .into_response()
        }
        "stream.jpg" => {
            // 5 MB in chunks, without content-length: the size is only known while reading.
            let chunks = (0..80).map(|i| {
                let mut c = vec![0u8; 64 * 1024];
                if i == 0 {
                    c[..4].copy_from_slice(b"\xFF\xD8\xFF\xE0");
                }
                Ok::<_, std::io::Error>(c)
            });
            let body = HttpBody::from_stream(futures_util::stream::iter(chunks));
            return (StatusCode::OK, [("content-type", "image/jpeg")], body).into_response();
        }
        _ => return (StatusCode::NOT_FOUND, "no such image").into_response(),
    };
    (StatusCode::OK, [("content-type", ct)], bytes).into_response()
}
