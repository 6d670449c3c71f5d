//! Request body and parameter extraction with validation: ids, JSON bodies, paging.

use crate::error::{Error, Result};
use crate::http::Request;

/// Longest id we accept from a caller.
const MAX_ID: usize = 256;

/// A required id-like query value.
pub fn id_param(req: &Request, name: &str) -> Result<String> {
    let v = req
        .query(name)
        .ok_or_else(|| Error::invalid(name, "is required"))?;
    check_id(name, &v)?;
    Ok(v)
}

pub fn check_id(name: &str, v: &str) -> Result<()> {
    if v.is_empty() || v.len() > MAX_ID {
        return Err(Error::invalid(name, format!("must be 1 to {MAX_ID} bytes")));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(name, "must not contain control characters"));
    }
    Ok(())
}

/// Refuses a body declared as something other than JSON.
pub(crate) fn require_json(req: &Request) -> Result<()> {
    match req.headers.get("content-type") {
        Some(ct) if !ct.to_ascii_lowercase().contains("json") => {
            Err(Error::invalid("content-type", "must be application/json"))
        }
        _ => Ok(()),
    }
}

/// Deserializes JSON into `T`, naming the offending field. Syntax errors are `invalid_json`;
/// errors about the whole document name `root`, or are `invalid_json` without one.
pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8], root: Option<&str>) -> Result<T> {
    crate::json::from_slice_traced(bytes).map_err(|(path, inner)| json_error(path, &inner, root))
}

/// The error of [`from_json`], in a plain function: compiled once, not once per `T`.
fn json_error(path: String, inner: &serde_json::Error, root: Option<&str>) -> Error {
    // A missing field is named itself, not the object that lacks it.
    let missing = inner
        .to_string()
        .strip_prefix("missing field `")
        .and_then(|r| r.split_once('`'))
        .map(|(name, _)| name.to_string());
    if let Some(name) = missing {
        let field = if path == "." {
            name
        } else {
            format!("{path}.{name}")
        };
        return Error::invalid(field, "is required");
    }
    match root {
        _ if inner.is_syntax() || inner.is_eof() => Error::InvalidJson(inner.to_string()),
        Some(root) if path == "." => Error::invalid(root, inner.to_string()),
        None if path == "." => Error::InvalidJson(inner.to_string()),
        _ => Error::invalid(path, inner.to_string()),
    }
}

/// Parses a JSON request body into `T`, naming the offending field.
pub fn json_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T> {
    if req.body.is_empty() {
        return Err(Error::InvalidJson(
            "the body is empty; send a JSON object".into(),
        ));
    }
    require_json(req)?;
    from_json(&req.body, None)
}

/// Most items per page of a listing: each one costs a storage read.
pub const MAX_LIST_LIMIT: usize = 100;

/// `limit` (1..=100, default 100) and `cursor` of a paginated listing.
pub fn page_params(req: &Request) -> Result<(usize, Option<String>)> {
    let limit = match req.query("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                Error::invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIST_LIMIT}"),
                )
            })?,
        None => MAX_LIST_LIMIT,
    };
    let cursor = match req.query("cursor") {
        Some(c) => {
            check_id("cursor", &c)?;
            Some(c)
        }
        None => None,
    };
    Ok((limit, cursor))
}
