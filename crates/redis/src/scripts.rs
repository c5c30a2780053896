//! The Lua scripts: each position operation is one atomic server-side step
//! over the book's keys, which share one hash tag (one cluster slot).
//!
//! KEYS are always `held, max, min, meta` of one book (a script uses the
//! first ones it needs). Values: held days as integers or `null` (sold);
//! prices as the decimal strings sqdata formats (3 decimals, shortest form).

use std::sync::LazyLock;

use crate::conn::Lua;

/// Lua's `unpack` is limited to a few thousand values: write in chunks.
const HELPERS: &str = r#"
local function chunked(cmd, key, list)
  for i = 1, #list, 1000 do redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list))) end
end
"#;

fn lua(body: &str) -> Lua {
    Lua::new(format!("{HELPERS}{body}"))
}

/// `{HGETALL held, HGETALL max, HGETALL min, HGET meta inc_date}` — one
/// consistent read of the whole book.
pub(crate) static SNAPSHOT: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]),
        redis.call('HGETALL', KEYS[3]), redis.call('HGET', KEYS[4], 'inc_date')}
"#)
});

/// ARGV: codes. Each becomes held with 0 days.
pub(crate) static NEW_HELD: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local kv = {}
for _, c in ipairs(ARGV) do kv[#kv + 1] = c; kv[#kv + 1] = '0' end
chunked('HSET', KEYS[1], kv)
return #ARGV
"#)
});

/// ARGV: code. Sold (`null`), prices dropped.
pub(crate) static MARK_SOLD: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
redis.call('HSET', KEYS[1], ARGV[1], 'null')
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"#)
});

/// ARGV: every code the broker holds. Returns `{added, removed}`.
pub(crate) static RECONCILE: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local want, have = {}, {}
for _, c in ipairs(ARGV) do want[c] = true end
local fields = redis.call('HKEYS', KEYS[1])
local removed, added, kv = {}, {}, {}
for _, c in ipairs(fields) do
  have[c] = true
  if not want[c] then removed[#removed + 1] = c end
end
if #removed > 0 then
  chunked('HDEL', KEYS[1], removed)
  chunked('HDEL', KEYS[2], removed)
  chunked('HDEL', KEYS[3], removed)
end
for _, c in ipairs(ARGV) do
  if not have[c] then have[c] = true; added[#added + 1] = c; kv[#kv + 1] = c; kv[#kv + 1] = '0' end
end
chunked('HSET', KEYS[1], kv)
return {added, removed}
"#)
});

/// ARGV: today (YYYY-MM-DD). +1 for every held code once per day; a date not
/// after the last increment is a no-op. Returns 1 if it ran.
pub(crate) static INC_HELD_DAYS: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local last = redis.call('HGET', KEYS[4], 'inc_date')
if last and last >= ARGV[1] then return 0 end
redis.call('HSET', KEYS[4], 'inc_date', ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local kv = {}
for i = 1, #all, 2 do
  if all[i + 1] ~= 'null' then kv[#kv + 1] = all[i]; kv[#kv + 1] = tostring(tonumber(all[i + 1]) + 1) end
end
chunked('HSET', KEYS[1], kv)
return 1
"#)
});

/// ARGV: triplets code, high, low (already rounded). For held codes only:
/// max = max(old, high), min = min(old, low). Returns flat triplets of what
/// changed: code, new max or '', new min or ''.
pub(crate) static UPDATE_EXTREMES: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local n = #ARGV / 3
if n == 0 then return {} end
local codes = {}
for i = 1, n do codes[i] = ARGV[3 * i - 2] end
local held = redis.call('HMGET', KEYS[1], unpack(codes))
local mx = redis.call('HMGET', KEYS[2], unpack(codes))
local mn = redis.call('HMGET', KEYS[3], unpack(codes))
local setmx, setmn, out = {}, {}, {}
for i = 1, n do
  local d = held[i]
  if d and d ~= 'null' then
    local c, hi, lo = codes[i], ARGV[3 * i - 1], ARGV[3 * i]
    local nm, nn = '', ''
    if (not mx[i]) or tonumber(hi) > tonumber(mx[i]) then setmx[#setmx + 1] = c; setmx[#setmx + 1] = hi; nm = hi end
    if (not mn[i]) or tonumber(lo) < tonumber(mn[i]) then setmn[#setmn + 1] = c; setmn[#setmn + 1] = lo; nn = lo end
    if nm ~= '' or nn ~= '' then out[#out + 1] = c; out[#out + 1] = nm; out[#out + 1] = nn end
  end
end
chunked('HSET', KEYS[2], setmx)
chunked('HSET', KEYS[3], setmn)
return out
"#)
});

/// ARGV: inc_date ('' = none), then quadruplets code, day ('null' or N),
/// max ('' = none), min ('' = none). Replaces the whole book.
pub(crate) static REPLACE: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if ARGV[1] ~= '' then redis.call('HSET', KEYS[4], 'inc_date', ARGV[1]) end
local held, mx, mn = {}, {}, {}
for i = 2, #ARGV, 4 do
  local c = ARGV[i]
  held[#held + 1] = c; held[#held + 1] = ARGV[i + 1]
  if ARGV[i + 2] ~= '' then mx[#mx + 1] = c; mx[#mx + 1] = ARGV[i + 2] end
  if ARGV[i + 3] ~= '' then mn[#mn + 1] = c; mn[#mn + 1] = ARGV[i + 3] end
end
chunked('HSET', KEYS[1], held)
chunked('HSET', KEYS[2], mx)
chunked('HSET', KEYS[3], mn)
return 1
"#)
});
