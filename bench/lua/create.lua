package.path = "./bench/lua/?.lua;" .. package.path
local common = require("common")
setup, done, response = common.setup, common.done, common.response
local n = 0
local run = os.getenv("BENCH_RUN") or "run"
function init(args)
  common.init(args)
end
request = function()
  n = n + 1
  local body = string.format(
    '{"email":"new-%s-%d-%d@bench.example","name":"Bench User %d","city":"Leeds"}',
    run, tid, n, n)
  return wrk.format("POST", "/v1/user", nil, body)
end
