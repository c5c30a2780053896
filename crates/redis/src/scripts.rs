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
-- A new version token of the book's codes (which are tracked, which held):
-- every script that may change them calls it; update_extremes clients
-- cache the book's extremes under the token and send only the ticks that
-- can move one. The time makes a token unique even after the book is deleted.
local function bump()
  local t = redis.call('TIME')
  local c = redis.call('HINCRBY', KEYS[2], 'vc', 1)
  redis.call('HSET', KEYS[2], 'v', t[1] .. '.' .. t[2] .. '.' .. c)
end
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
bump()
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
bump()
return #codes
"#)
});

/// ARGV[1]: code. Sold, prices dropped.
pub(crate) static MARK_SOLD: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
redis.call('HSET', KEYS[1], ARGV[1], 'null||')
bump()
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
if #kv > 0 or #removed > 0 then bump() end
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
/// only: max = max(old, high), min = min(old, low). Reads the whole book and
/// returns the book's token, then `C|code|new max or ''|new min or ''` per
/// changed code, then `S|code|max|min` per held code after the update: the
/// caller's cache of the book's extremes (see [`UPDATE_EXTREMES_CACHED`]).
pub(crate) static UPDATE_EXTREMES: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
local all = redis.call('HGETALL', KEYS[1])
local cur = {}
for i = 1, #all, 2 do cur[all[i]] = all[i + 1] end
local set, out = {}, {redis.call('HGET', KEYS[2], 'v') or ''}
for c, hi, lo in string.gmatch(ARGV[1], '([^,;]+),([^,;]+),([^,;]+)') do
  local v = cur[c]
  if v then
    local s, mx, mn = string.match(v, '^([^|]*)|([^|]*)|([^|]*)$')
    if s ~= 'null' then
      local cm, cn = '', ''
      if mx == '' or tonumber(hi) > tonumber(mx) then mx = hi; cm = hi end
      if mn == '' or tonumber(lo) < tonumber(mn) then mn = lo; cn = lo end
      if cm ~= '' or cn ~= '' then
        local nv = s .. '|' .. mx .. '|' .. mn
        cur[c] = nv
        set[#set + 1] = c; set[#set + 1] = nv
        out[#out + 1] = 'C|' .. c .. '|' .. cm .. '|' .. cn
      end
    end
  end
end
if #set > 0 then chunked('HSET', KEYS[1], set) end
for c, v in pairs(cur) do
  local s, mx, mn = string.match(v, '^([^|]*)|([^|]*)|([^|]*)$')
  if s ~= 'null' then out[#out + 1] = 'S|' .. c .. '|' .. mx .. '|' .. mn end
end
return table.concat(out, '\n')
"#)
});

/// ARGV[1]: the ticks that can move an extreme by the caller's cache;
/// ARGV[2]: the token the cache was taken under. `!` when the book's codes
/// changed since (the caller reads the whole book again). Otherwise only
/// the ticked codes are read: `C|code|new max|new min` per changed code,
/// `U|code|max|min` per held ticked code that did not change (another
/// process moved it first: the caller's cache catches up).
pub(crate) static UPDATE_EXTREMES_CACHED: LazyLock<Lua> = LazyLock::new(|| {
    lua(r#"
if (redis.call('HGET', KEYS[2], 'v') or '') ~= ARGV[2] then return '!' end
local codes, his, los = {}, {}, {}
for c, hi, lo in string.gmatch(ARGV[1], '([^,;]+),([^,;]+),([^,;]+)') do
  codes[#codes + 1] = c; his[#his + 1] = hi; los[#los + 1] = lo
end
if #codes == 0 then return '' end
local cur = redis.call('HMGET', KEYS[1], unpack(codes))
local set, out = {}, {}
for i, c in ipairs(codes) do
  local v = cur[i]
  if v then
    local s, mx, mn = string.match(v, '^([^|]*)|([^|]*)|([^|]*)$')
    if s ~= 'null' then
      local hi, lo, cm, cn = his[i], los[i], '', ''
      if mx == '' or tonumber(hi) > tonumber(mx) then mx = hi; cm = hi end
      if mn == '' or tonumber(lo) < tonumber(mn) then mn = lo; cn = lo end
      if cm ~= '' or cn ~= '' then
        set[#set + 1] = c; set[#set + 1] = s .. '|' .. mx .. '|' .. mn
        out[#out + 1] = 'C|' .. c .. '|' .. cm .. '|' .. cn
      else
        out[#out + 1] = 'U|' .. c .. '|' .. mx .. '|' .. mn
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
bump()
return 1
"#)
});
