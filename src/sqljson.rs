//! A statement's arguments and its rows as JSON text: the form in which they cross between
//! the `.wasm` and the runtime's SQL API, one string each way per statement, where value by
//! value each argument, row and cell was a crossing of its own.
//!
//! The runtime hands SQLite's values to JS as numbers, strings, `null` and `ArrayBuffer`s;
//! the edge sends a blob back as `null` (nothing here stores or reads one).

use crate::ports::SqlValue;
use serde_json::Value;

/// `args` as a JSON array. A real that JSON cannot hold (NaN, ±∞) goes as `null`: SQLite makes
/// NaN a NULL too, and nothing binds an infinity.
pub fn args(args: &[SqlValue]) -> String {
    let values: Vec<Value> = args
        .iter()
        .map(|a| match a {
            SqlValue::Null => Value::Null,
            SqlValue::Int(i) => Value::from(*i),
            SqlValue::Real(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            SqlValue::Text(t) => Value::String(t.clone()),
        })
        .collect();
    Value::Array(values).to_string()
}

/// Rows from their JSON text (an array of arrays of cells). A whole number is an `Int` (the
/// runtime gives every SQLite integer to JS as a number, rounded past 2^53 either way); any
/// other number a `Real`; a boolean 0 or 1; anything that is not a scalar `Null`. `None` when
/// the text is not that shape.
pub fn rows(text: &str) -> Option<Vec<Vec<SqlValue>>> {
    let rows: Vec<Vec<Value>> = serde_json::from_str(text).ok()?;
    Some(
        rows.into_iter()
            .map(|row| row.into_iter().map(cell).collect())
            .collect(),
    )
}

fn cell(v: Value) -> SqlValue {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Int(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s),
        Value::Bool(b) => SqlValue::Int(i64::from(b)),
        Value::Null | Value::Array(_) | Value::Object(_) => SqlValue::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_keep_their_types_and_text_exactly() {
        let a = args(&[
            SqlValue::Null,
            SqlValue::Int(-42),
            SqlValue::Int(1_764_000_000_123),
            SqlValue::Real(2.5),
            SqlValue::Real(f64::NAN),
            SqlValue::Text("quote \" backslash \\ line\nfeed é 🙂".into()),
        ]);
        assert_eq!(
            a,
            r#"[null,-42,1764000000123,2.5,null,"quote \" backslash \\ line\nfeed é 🙂"]"#
        );
        assert_eq!(args(&[]), "[]");
    }

    #[test]
    fn rows_read_back_as_the_runtime_gave_them() {
        let r = rows(r#"[[1,"a",null,2.5,true],[],[-7,"",{},[1]]]"#).unwrap();
        assert_eq!(r.len(), 3);
        assert!(matches!(r[0][0], SqlValue::Int(1)));
        assert_eq!(r[0][1].text(), Some("a"));
        assert!(matches!(r[0][2], SqlValue::Null));
        assert!(matches!(r[0][3], SqlValue::Real(f) if f == 2.5));
        assert!(matches!(r[0][4], SqlValue::Int(1)));
        assert!(r[1].is_empty());
        assert!(matches!(r[2][0], SqlValue::Int(-7)));
        assert_eq!(r[2][1].text(), Some(""));
        assert!(matches!(r[2][2], SqlValue::Null));
        assert!(matches!(r[2][3], SqlValue::Null));
        assert_eq!(rows("[]").unwrap().len(), 0);
    }

    #[test]
    fn a_malformed_answer_is_refused() {
        for bad in ["", "{}", "[1]", "[[1]", "null", "[[1],2]"] {
            assert!(rows(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn text_and_whole_numbers_round_trip() {
        let sent = [
            SqlValue::Int(0),
            SqlValue::Int(i64::from(i32::MAX) * 4),
            SqlValue::Text("Ünïcode \u{0} nul".into()),
        ];
        let back = rows(&format!("[{}]", args(&sent))).unwrap();
        assert!(matches!(back[0][0], SqlValue::Int(0)));
        assert_eq!(back[0][1].int(), Some(i64::from(i32::MAX) * 4));
        assert_eq!(back[0][2].text(), Some("Ünïcode \u{0} nul"));
    }
}
