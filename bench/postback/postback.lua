-- wrk script for bench/postback: every thread cycles through its own file of pre-built, pre-signed requests.
--
-- run.py substitutes DIR (where requests-<thread>.bin live) and EXACT. A requests file is a sequence of
-- "<byte length>\n<raw HTTP request>". With EXACT = true every request is sent once: a connection whose
-- thread has handed out all its requests waits (delay) instead of sending, the thread writes done-<thread>
-- when its last answer is in and stops, and run.py then stops wrk with SIGINT. Every 200 answer's order_id
-- goes to answered-<thread>.txt (line-buffered, so a killed server cannot lose what was already answered).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local clock = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC: comparable across threads
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) * 1e-9
end

local DIR = "@DIR@"
local EXACT = @EXACT@

-- setup/done run in the main state; the rest in each thread's own state
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests = {}
local count, reserved, sent, received = 0, 0, 0, 0
local answered
ok, duplicates, wrapped, first_at, last_at = 0, 0, 0, 0, 0
statuses = {}

function init(args)
  local file = assert(io.open(DIR .. "/requests-" .. id .. ".bin", "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  while pos <= #data do
    local newline = data:find("\n", pos, true)
    local length = tonumber(data:sub(pos, newline - 1))
    requests[#requests + 1] = data:sub(newline + 1, newline + length)
    pos = newline + length + 1
  end
  count = #requests
  answered = assert(io.open(DIR .. "/answered-" .. id .. ".txt", "w"))
  answered:setvbuf("line")
end

if EXACT then
  function delay()
    if reserved >= count then
      return 1000000000 -- nothing left to send on this connection
    end
    reserved = reserved + 1
    return 0
  end
end

function request()
  if EXACT and reserved == 0 then
    -- wrk calls request() once on thread 0 at start-up to check the script; that request is never sent,
    -- and every real one comes after a delay() reservation
    return requests[1]
  end
  sent = sent + 1
  if sent > reserved then
    reserved = sent -- a reconnect after an error sends without asking delay() first
  end
  if sent == 1 then
    first_at = now()
  end
  if sent > count then
    wrapped = wrapped + 1 -- a repeat (only after connection errors): the server must answer it as a duplicate
  end
  return requests[(sent - 1) % count + 1]
end

function response(status, headers, body)
  received = received + 1
  last_at = now()
  if status == 200 then
    ok = ok + 1
    if body:find('"duplicate":true', 1, true) then
      duplicates = duplicates + 1
    end
    answered:write(body:match('"order_id":"([^"]*)"') or "?", "\n")
  else
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
  end
  if EXACT and received == count then
    local marker = assert(io.open(DIR .. "/done-" .. id, "w"))
    marker:write("done")
    marker:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, _requests)
  local total = { ok = 0, duplicates = 0, wrapped = 0 }
  local first, last = math.huge, 0
  local other = {}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(total) do
      total[key] = total[key] + thread:get(key)
    end
    local started, ended = thread:get("first_at"), thread:get("last_at")
    if started > 0 and started < first then
      first = started
    end
    if ended > last then
      last = ended
    end
    for status, n in pairs(thread:get("statuses")) do
      other[#other + 1] = string.format('"%s": %d', status, n)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests": %d, "duration_us": %d, "ok": %d, "duplicates": %d, "wrapped": %d, ' ..
    '"first_at": %.6f, "last_at": %.6f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f, "statuses": {%s}}\n',
    summary.requests, summary.duration, total.ok, total.duplicates, total.wrapped, first == math.huge and 0 or first,
    last, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, table.concat(other, ", ")))
end
