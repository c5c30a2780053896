//! JSON written byte for byte as CPython's `json.dumps(obj, ensure_ascii=True,
//! indent=4)` writes it — SilverQuant's `save_json` — so that files we write
//! are indistinguishable from the ones it writes.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

/// Serialises like `json.dumps(v, ensure_ascii=True, indent=4)`.
pub fn dumps(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_value(&mut out, v, 0);
    out
}

/// Serialises a top-level object.
pub fn dumps_map(m: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(32 + m.len() * 32);
    write_object(&mut out, m, 0);
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn write_object(out: &mut String, m: &Map<String, Value>, level: usize) {
    if m.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push('{');
    let mut first = true;
    for (k, v) in m {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('\n');
        indent(out, level + 1);
        write_str(out, k);
        out.push_str(": ");
        write_value(out, v, level + 1);
    }
    out.push('\n');
    indent(out, level);
    out.push('}');
}

fn write_value(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(a) => {
            if a.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                indent(out, level + 1);
                write_value(out, x, level + 1);
            }
            out.push('\n');
            indent(out, level);
            out.push(']');
        }
        Value::Object(m) => write_object(out, m, level),
    }
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        out.push_str(&float_repr(f));
    }
}

/// `json.dumps` string escaping with `ensure_ascii=True`: everything outside
/// printable ASCII becomes `\uXXXX` (surrogate pairs above the BMP).
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// CPython's `float.__repr__`: the shortest round-trip digits, fixed notation
/// for decimal exponents in [-4, 16), scientific (`1e+16`, `1.5e-05`) outside.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".to_owned() } else { "-Infinity".to_owned() };
    }
    // Fast path for the usual range (prices, assets): Rust's Display prints
    // the same shortest digits in fixed notation; Python adds ".0" to whole
    // numbers. 17-digit values take the careful path below.
    let a = f.abs();
    if (1e-4..1e16).contains(&a) {
        let mut s = format!("{f}");
        if s.bytes().filter(u8::is_ascii_digit).count() < 17 {
            if !s.contains('.') {
                s.push_str(".0");
            }
            return s;
        }
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "1.1234e1", "-5e-324".
    let mut sci = format!("{f:e}");
    // With 17 significant digits there can be two shortest round-trip strings;
    // CPython prints the one nearest the exact value, which is the correctly
    // rounded 17-digit form.
    if sci.split_once('e').is_some_and(|(m, _)| m.bytes().filter(u8::is_ascii_digit).count() >= 17) {
        sci = format!("{f:.16e}");
    }
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(24);
    if neg {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");

    #[test]
    fn float_repr_matches_cpython() {
        let text = std::fs::read_to_string(format!("{FIXTURES}py_float_repr.txt")).unwrap();
        let mut n = 0;
        for line in text.lines() {
            let (bits, want) = line.split_once(' ').unwrap();
            let f = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
            assert_eq!(float_repr(f), want, "bits {bits}");
            n += 1;
        }
        assert!(n > 3000);
    }

    #[test]
    fn documents_match_cpython_byte_for_byte() {
        for name in ["positions_py.json", "empty_py.json", "max_price_py.json", "nested_py.json"] {
            let want = std::fs::read_to_string(format!("{FIXTURES}{name}")).unwrap();
            let v: Value = serde_json::from_str(&want).unwrap();
            assert_eq!(dumps(&v), want, "{name}");
        }
    }
}
