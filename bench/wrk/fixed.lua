-- One fixed request, sent over and over on every connection.
-- Arguments (after wrk's "--"): METHOD PATH BODY ["Header: value" ...]; BODY "" for none.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local req

function init(args)
   local body = args[3] ~= "" and args[3] or nil
   req = wrk.format(args[1], args[2], parse_headers(args, 4), body)
end

function request()
   return req
end
