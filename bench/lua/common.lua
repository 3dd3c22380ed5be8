-- Shared by every scenario: the root token header, a per-thread id, the pre-created users,
-- and a done() hook that prints the summary as one JSON line for bench/run to parse.
local common = {}

local threads = {}
local counter = 0

function common.setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function common.init(args)
  wrk.headers["X-Bunker-Token"] = os.getenv("BENCH_ROOT_TOKEN")
  wrk.headers["Content-Type"] = "application/json"
  math.randomseed(os.time() + (tid or 0) * 7919)
  common.tokens = {}
  local file = os.getenv("BENCH_TOKENS")
  local handle = file and io.open(file, "r")
  if handle then
    for line in handle:lines() do
      table.insert(common.tokens, line)
    end
    handle:close()
  end
  common.users = #common.tokens
end

function common.pick()
  return math.random(1, common.users)
end

function common.uuid()
  local r = math.random
  return string.format("%08x-%04x-4%03x-%04x-%012x",
    r(0, 0x7fffffff), r(0, 0xffff), r(0, 0xfff), 0x8000 + r(0, 0x3fff), r(0, 0xffffffffffff))
end

function common.done(summary, latency, requests)
  local non2xx = 0
  for _, t in ipairs(threads) do
    non2xx = non2xx + (tonumber(t:get("bad")) or 0)
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"socket_errors":%d,"status_errors":%d,"bad_answers":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, non2xx))
end

-- Counts answers that are 200 but say {"status":"error"}.
bad = 0
function common.response(status, headers, body)
  if status ~= 200 or string.find(body, '"status":"error"', 1, true) then
    bad = bad + 1
  end
end

return common
