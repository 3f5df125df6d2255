-- Requests on random sessions out of many, as live traffic spreads over a large store: each
-- request takes one session id at random from the file and reads it (GET /v1/session), writes its
-- value (PUT /v1/session/chat), or does either at random ("mix").
-- Arguments: MODE (get | put | mix) COOKIE_FILE (one session id a line) VALUE ["Header: value" ...]
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local ids, headers, mode, body = {}, nil, nil, nil

function init(args)
   mode = args[1]
   for id in io.lines(args[2]) do ids[#ids + 1] = id end
   assert(#ids > 0, "no cookies in " .. args[2])
   body = '{"value":"' .. args[3] .. '"}'
   headers = parse_headers(args, 4)
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
end

function request()
   local h = { Cookie = "__Host-baton=" .. ids[math.random(#ids)] }
   for k, v in pairs(headers) do h[k] = v end
   local put = mode == "put" or (mode == "mix" and math.random(2) == 1)
   if put then
      h["Content-Type"] = "application/json"
      return wrk.format("PUT", "/v1/session/chat", h, body)
   end
   return wrk.format("GET", "/v1/session", h)
end
