-- PUT by N independent clients, each with its own session cookie and at most one request in
-- flight, like N browsers. wrk's Lua API does not say which connection a request goes out on, so
-- the cookies form a pool: request() takes a free one, response() gives it back (the value it
-- wrote starts with "c<index>:", echoed in the response body, which says whose answer it is).
-- Arguments: PATH COOKIE_FILE (one Cookie header value a line, `name=id`) VALUE_BYTES ["Header: value" ...]
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local reqs, free, inflight = {}, {}, {}
local calls, rr = 0, 0
shared = 0 -- requests sent with a cookie already in flight (pool empty: only after errors)

function init(args)
   local path, file, bytes = args[1], args[2], tonumber(args[3])
   local base = parse_headers(args, 4)
   for cookie in io.lines(file) do
      local i = #reqs + 1
      local headers = { Cookie = cookie, ["Content-Type"] = "application/json" }
      for k, v in pairs(base) do headers[k] = v end
      local value = string.format("c%03d:", i) .. string.rep("x", bytes - 5)
      reqs[i] = wrk.format("PUT", path, headers, '{"value":"' .. value .. '"}')
      free[#free + 1] = i
   end
   assert(#reqs > 0, "no cookies in " .. file)
end

function request()
   calls = calls + 1
   -- wrk calls request() once before the run to check that it parses: not a real request.
   if calls == 1 then return reqs[1] end
   local i = table.remove(free)
   if not i then
      rr = rr % #reqs + 1
      i = rr
      shared = shared + 1
   end
   inflight[i] = true
   return reqs[i]
end

function response(status, headers, body)
   count_status(status)
   local i = tonumber(body:match('"c(%d%d%d):') or "")
   if i and inflight[i] then
      inflight[i] = nil
      free[#free + 1] = i
   end
end

function report(thread)
   io.write(string.format("SHARED %d\n", thread:get("shared")))
end
