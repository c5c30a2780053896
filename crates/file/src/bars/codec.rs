//! The column codec of bar files version 2: each column of a series is
//! stored apart, as the differences between neighbouring values.
//!
//! - Integers (the time in seconds, the volume) are stored as zigzag varints
//!   of their successive differences divided by the differences' greatest
//!   common divisor (the *unit*: 86,400 for daily bars, 60 for minute bars),
//!   so a regular series costs about one byte a value. Differences wrap, so
//!   every `i64` sequence round-trips bit for bit.
//! - Prices and amounts become integers when a decimal scale (0 to 6 digits)
//!   gives back every value bit for bit — checked with the very division the
//!   decoder does, so no value is ever rounded. A column where no scale is
//!   exact (a computed float, a -0.0) is stored raw, 8 bytes a value.
//!
//! Decoding trusts nothing: every read is bounded by the body, and a varint
//! longer than 10 bytes or a scale out of range is corruption, not a panic.

/// Column codecs (the first byte of each column).
const RAW: u8 = 0;
const INT: u8 = 1;
const SCALED: u8 = 2;

/// Exact powers of ten for the scales tried (f64 holds them exactly).
const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
/// Scaled integers beyond this are not exact in f64 anyway.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Appends an integer column: `INT`, the unit, the first value, then each
/// difference divided by the unit.
pub(crate) fn put_ints(out: &mut Vec<u8>, values: impl Iterator<Item = i64> + Clone) {
    let mut unit = 0u64;
    let mut prev: Option<i64> = None;
    for v in values.clone() {
        if let Some(p) = prev {
            unit = gcd(unit, v.wrapping_sub(p).unsigned_abs());
        }
        prev = Some(v);
    }
    // 0 when every difference is 0; > i64::MAX only for a wrapped i64::MIN.
    if unit == 0 || unit > i64::MAX as u64 {
        unit = 1;
    }
    out.push(INT);
    put_varint(out, unit);
    let mut prev = 0i64;
    for (i, v) in values.enumerate() {
        if i == 0 {
            put_varint(out, zigzag(v));
        } else {
            put_varint(out, zigzag(v.wrapping_sub(prev) / unit as i64));
        }
        prev = v;
    }
}

/// The smallest decimal scale that gives back every value bit for bit.
fn exact_scale(values: &[f64]) -> Option<u8> {
    'scale: for (k, p) in POW10.iter().enumerate() {
        for v in values {
            let s = (v * p).round();
            if s.abs() > MAX_EXACT || ((s as i64) as f64 / p).to_bits() != v.to_bits() {
                continue 'scale;
            }
        }
        return Some(k as u8);
    }
    None
}

/// Appends a float column: scaled integers when exact, else raw.
pub(crate) fn put_floats(out: &mut Vec<u8>, values: &[f64]) {
    match exact_scale(values) {
        Some(k) => {
            out.push(SCALED);
            out.push(k);
            let p = POW10[k as usize];
            put_ints(out, values.iter().map(|v| (v * p).round() as i64));
        }
        None => {
            out.push(RAW);
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// A bounded reader over a file body; every failure is a reason string the
/// caller turns into a `Corrupt` error naming the file.
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Self { b, at: 0 }
    }

    pub(crate) fn done(&self) -> bool {
        self.at == self.b.len()
    }

    fn byte(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.at).ok_or("column data ends early")?;
        self.at += 1;
        Ok(v)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return Err("varint overflows 64 bits".into());
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    fn raw_u64(&mut self) -> Result<u64, String> {
        let end = self.at.checked_add(8).filter(|e| *e <= self.b.len()).ok_or("column data ends early")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.b[self.at..end]);
        self.at = end;
        Ok(u64::from_le_bytes(a))
    }

    fn int_body(&mut self, n: usize, out: &mut Vec<i64>) -> Result<(), String> {
        let unit = self.varint()?;
        if unit == 0 || unit > i64::MAX as u64 {
            return Err(format!("bad column unit {unit}"));
        }
        let mut prev = 0i64;
        for i in 0..n {
            let z = unzigzag(self.varint()?);
            prev = if i == 0 { z } else { prev.wrapping_add(z.wrapping_mul(unit as i64)) };
            out.push(prev);
        }
        Ok(())
    }

    /// An integer column of `n` values.
    pub(crate) fn ints(&mut self, n: usize) -> Result<Vec<i64>, String> {
        let mut out = Vec::with_capacity(n);
        match self.byte()? {
            INT => self.int_body(n, &mut out)?,
            c => return Err(format!("unknown integer column codec {c}")),
        }
        Ok(out)
    }

    /// A float column of `n` values.
    pub(crate) fn floats(&mut self, n: usize) -> Result<Vec<f64>, String> {
        match self.byte()? {
            RAW => (0..n).map(|_| self.raw_u64().map(f64::from_bits)).collect(),
            SCALED => {
                let k = self.byte()?;
                let p = *POW10.get(k as usize).ok_or_else(|| format!("bad decimal scale {k}"))?;
                if self.byte()? != INT {
                    return Err("scaled column without integers".into());
                }
                let mut ints = Vec::with_capacity(n);
                self.int_body(n, &mut ints)?;
                Ok(ints.into_iter().map(|i| i as f64 / p).collect())
            }
            c => Err(format!("unknown float column codec {c}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_round_trip_at_the_edges() {
        for vals in [
            vec![],
            vec![0],
            vec![i64::MIN, i64::MAX, 0, -1, i64::MIN],
            vec![1_700_000_000, 1_700_086_400, 1_700_345_600],
            vec![5, 5, 5],
        ] {
            let mut b = Vec::new();
            put_ints(&mut b, vals.iter().copied());
            let mut c = Cursor::new(&b);
            assert_eq!(c.ints(vals.len()).unwrap(), vals);
            assert!(c.done());
        }
    }

    #[test]
    fn floats_are_scaled_only_when_exact() {
        let prices = [10.01, 10.02, 9.99, 0.0, 123456.78];
        let mut b = Vec::new();
        put_floats(&mut b, &prices);
        assert_eq!(b[0..2], [SCALED, 2]);
        assert_eq!(Cursor::new(&b).floats(prices.len()).unwrap(), prices);
        for odd in [[0.1 + 0.2, 1.0], [-0.0, 1.0], [f64::MAX, 1.0], [1e-300, 2.0]] {
            let mut b = Vec::new();
            put_floats(&mut b, &odd);
            assert_eq!(b[0], RAW, "{odd:?}");
            let back = Cursor::new(&b).floats(2).unwrap();
            assert!(back.iter().zip(odd).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn a_daily_series_costs_about_a_byte_per_time() {
        let t: Vec<i64> = (0..550).map(|i| 1_672_617_600 + i * 86_400 + (i / 5) * 2 * 86_400).collect();
        let mut b = Vec::new();
        put_ints(&mut b, t.iter().copied());
        assert!(b.len() < 560, "{}", b.len());
    }
}
