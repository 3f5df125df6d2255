-- The memory run's mix, in a fixed cycle of 10 requests: 4 session reads, 2 writes (existing
-- sessions, round robin), 1 create (PUT without a cookie: a new session each time), the iframe
-- page, cookie-provider.js compressed, iframe.js compressed.
-- Arguments: COOKIE_FILE (one Cookie header value a line, `name=id`) ORIGIN
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local cycle = {}
local ids = {}
local n, next_id = 0, 0
creates = 0

function init(args)
   for id in io.lines(args[1]) do ids[#ids + 1] = id end
   local origin = args[2]
   local value = '{"value":"' .. string.rep("m", 88) .. '"}'
   local json = { Origin = origin, ["Content-Type"] = "application/json" }
   local gz = { ["Accept-Encoding"] = "gzip, deflate, br" }
   -- Each entry: function(cookie header value) -> request string.
   local read = function(c) return wrk.format("GET", "/v1/session", { Origin = origin, Cookie = c }) end
   local write = function(c)
      return wrk.format("PUT", "/v1/session/chat",
         { Origin = origin, Cookie = c, ["Content-Type"] = "application/json" }, value)
   end
   local create = function() creates = creates + 1; return wrk.format("PUT", "/v1/session/chat", json, value) end
   local iframe = wrk.format("GET", "/iframe.html")
   local provider = wrk.format("GET", "/cookie-provider.js", gz)
   local iframe_js = wrk.format("GET", "/iframe.js", gz)
   cycle = { read, read, write, read, create, read, write,
             function() return iframe end, function() return provider end, function() return iframe_js end }
end

function request()
   n = n % #cycle + 1
   next_id = next_id % #ids + 1
   return cycle[n](ids[next_id])
end

function report(thread)
   io.write(string.format("CREATES %d\n", thread:get("creates")))
end
