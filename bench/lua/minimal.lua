package.path = "./bench/lua/?.lua;" .. package.path
local common = require("common")
setup, done, response = common.setup, common.done, common.response
function init(args)
  common.init(args)
end
request = function()
  return wrk.format("GET", os.getenv("BENCH_PATH") or "/")
end
