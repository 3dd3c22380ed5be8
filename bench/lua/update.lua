package.path = "./bench/lua/?.lua;" .. package.path
local common = require("common")
setup, done, response = common.setup, common.done, common.response
local n = 0
function init(args)
  common.init(args)
end
request = function()
  n = n + 1
  local body = string.format('{"city":"City %d-%d"}', tid, n)
  return wrk.format("PUT", "/v1/user/token/" .. common.tokens[common.pick()], nil, body)
end
