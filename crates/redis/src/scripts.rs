//! The Lua scripts: each position operation is one atomic server-side step
//! over the book's two keys, which share one hash tag (one cluster slot).
//!
//! Layout (see the crate README): `pos` maps a code to `S|max|min`, where S
//! is the book's day counter when the code was bought (`null` once sold) and
//! max/min are price strings ('' = none); `meta` holds `n` (the counter,
//! bumped once a day by inc_held_days) and `inc_date`. A code's held days
//! are `n - S`, so the daily increment is O(1) however large the book.
//!
//! Arguments and replies are packed into single strings: on a slow loopback
//! every extra protocol element costs about a microsecond, every element
//! converted in and out of Lua more than that.

use std::sync::LazyLock;

use crate::conn::Lua;

/// Lua's `unpack` is limited to a few thousand values: write in chunks.
const HELPERS: &str = r#"
local function chunked(cmd, key, list)
  for i = 1, #list, 1000 do redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list))) end
end
local function split(s, sep)
  local out = {}
  for x in string.gmatch(s, '[^' .. sep .. ']+') do out[#out + 1] = x end
  return out
end
local function counter() return tonumber(redis.call('HGET', KEYS[2], 'n') or '0') end
"#;

fn lua(body: &str) -> Lua {
    Lua::new(format!("{HELPERS}{body}"))
}

/// Returns `n|inc_date` then one `code|S|max|min` line per code.
pub(crate) static SNAPSHOT: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local m = redis.call('HMGET', KEYS[2], 'n', 'inc_date')
local all = redis.call('HGETALL', KEYS[1])
local out = {(m[1] or '0') .. '|' .. (m[2] or '')}
for i = 1, #all, 2 do out[#out + 1] = all[i] .. '|' .. all[i + 1] end
return table.concat(out, '\n')
"#)
});

/// ARGV[1]: codes, comma-separated. Each becomes held with 0 days (prices kept).
pub(crate) static NEW_HELD: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local codes = split(ARGV[1], ',')
if #codes == 0 then return 0 end
local n = counter()
local cur = redis.call('HMGET', KEYS[1], unpack(codes))
local kv = {}
for i, c in ipairs(codes) do
  local mx, mn = '', ''
  if cur[i] then mx, mn = string.match(cur[i], '^[^|]*|([^|]*)|([^|]*)$') end
  kv[#kv + 1] = c; kv[#kv + 1] = n .. '|' .. mx .. '|' .. mn
end
chunked('HSET', KEYS[1], kv)
return #codes
"#)
});

/// ARGV[1]: codes, comma-separated. Each becomes sold (`null`), prices
/// kept (SilverQuant's `del_held_day`); a code not tracked is added so.
pub(crate) static DEL_HELD_DAYS: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local codes = split(ARGV[1], ',')
if #codes == 0 then return 0 end
local cur = redis.call('HMGET', KEYS[1], unpack(codes))
local kv = {}
for i, c in ipairs(codes) do
  local mx, mn = '', ''
  if cur[i] then mx, mn = string.match(cur[i], '^[^|]*|([^|]*)|([^|]*)$') end
  kv[#kv + 1] = c; kv[#kv + 1] = 'null|' .. mx .. '|' .. mn
end
chunked('HSET', KEYS[1], kv)
return #codes
"#)
});

/// ARGV[1]: code. Sold, prices dropped.
pub(crate) static MARK_SOLD: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
redis.call('HSET', KEYS[1], ARGV[1], 'null||')
return 1
"#)
});

/// ARGV[1]: every code the broker holds, comma-separated. Returns
/// `{added, removed}`, each comma-separated.
pub(crate) static RECONCILE: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local want, have = {}, {}
local broker = split(ARGV[1], ',')
for _, c in ipairs(broker) do want[c] = true end
local fields = redis.call('HKEYS', KEYS[1])
local removed, added, kv = {}, {}, {}
for _, c in ipairs(fields) do
  have[c] = true
  if not want[c] then removed[#removed + 1] = c end
end
if #removed > 0 then chunked('HDEL', KEYS[1], removed) end
local n = counter()
for _, c in ipairs(broker) do
  if not have[c] then have[c] = true; added[#added + 1] = c; kv[#kv + 1] = c; kv[#kv + 1] = n .. '||' end
end
if #kv > 0 then chunked('HSET', KEYS[1], kv) end
return {table.concat(added, ','), table.concat(removed, ',')}
"#)
});

/// ARGV[1]: today (YYYY-MM-DD). Bumps the book's day counter once per day
/// (every held code's days = n - S grow by one; sold codes have no S).
/// A date not after the last increment is a no-op. Returns 1 if it ran.
pub(crate) static INC_HELD_DAYS: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local last = redis.call('HGET', KEYS[2], 'inc_date')
if last and last >= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'inc_date', ARGV[1])
redis.call('HINCRBY', KEYS[2], 'n', 1)
return 1
"#)
});

/// ARGV[1]: ticks `code,high,low;…` (prices already rounded). For held codes
/// only: max = max(old, high), min = min(old, low). Returns one
/// `code|new max or ''|new min or ''` line per changed code.
pub(crate) static UPDATE_EXTREMES: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local all = redis.call('HGETALL', KEYS[1])
local cur = {}
for i = 1, #all, 2 do cur[all[i]] = all[i + 1] end
local set, out = {}, {}
for c, hi, lo in string.gmatch(ARGV[1], '([^,;]+),([^,;]+),([^,;]+)') do
  local v = cur[c]
  if v then
    local s, mx, mn = string.match(v, '^([^|]*)|([^|]*)|([^|]*)$')
    if s ~= 'null' then
      local cm, cn = '', ''
      if mx == '' or tonumber(hi) > tonumber(mx) then mx = hi; cm = hi end
      if mn == '' or tonumber(lo) < tonumber(mn) then mn = lo; cn = lo end
      if cm ~= '' or cn ~= '' then
        set[#set + 1] = c; set[#set + 1] = s .. '|' .. mx .. '|' .. mn
        out[#out + 1] = c .. '|' .. cm .. '|' .. cn
      end
    end
  end
end
if #set > 0 then chunked('HSET', KEYS[1], set) end
return table.concat(out, '\n')
"#)
});

/// ARGV[1]: inc_date ('' = none); ARGV[2]: `code|days or null|max|min;…`.
/// Replaces the whole book (counter reset to 0, so S = -days).
pub(crate) static REPLACE: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[2], 'n', '0')
if ARGV[1] ~= '' then redis.call('HSET', KEYS[2], 'inc_date', ARGV[1]) end
local kv = {}
for c, d, mx, mn in string.gmatch(ARGV[2], '([^|;]+)|([^|;]+)|([^|;]*)|([^|;]*)') do
  local s = 'null'
  if d ~= 'null' then s = tostring(-tonumber(d)) end
  kv[#kv + 1] = c; kv[#kv + 1] = s .. '|' .. mx .. '|' .. mn
end
if #kv > 0 then chunked('HSET', KEYS[1], kv) end
return 1
"#)
});
