-- Create+get of a session: POST /v1/session/<new uuid>, then, once the create has been
-- answered, GET of that session (on whichever connection of the thread is free next).
-- Every answer counts as one request: a create+get pair is two.
package.path = "./bench/lua/?.lua;" .. package.path
local common = require("common")
setup, done = common.setup, common.done
local created = {}
local n = 0
function init(args)
  common.init(args)
end
request = function()
  local ready = table.remove(created)
  if ready then
    return wrk.format("GET", "/v1/session/" .. ready)
  end
  n = n + 1
  local body = string.format('{"cart":[%d,%d],"theme":"dark"}', tid, n)
  return wrk.format("POST", "/v1/session/" .. common.uuid(), nil, body)
end
response = function(status, headers, body)
  common.response(status, headers, body)
  local session = string.match(body, '^{"status":"ok","session":"([%x%-]+)"}$')
  if session then
    table.insert(created, session)
  end
end
