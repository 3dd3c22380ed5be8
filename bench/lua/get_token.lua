package.path = "./bench/lua/?.lua;" .. package.path
local common = require("common")
setup, done, response = common.setup, common.done, common.response
function init(args)
  common.init(args)
end
request = function()
  return wrk.format("GET", "/v1/user/token/" .. common.tokens[common.pick()])
end
