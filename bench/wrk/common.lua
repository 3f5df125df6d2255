-- Shared by every script here: counts each response's status per thread and, at the end, prints
-- one "STATUS <code> <count>" line per status (compare.py treats anything but 2xx as an error).
-- Each wrk thread has its own Lua state, so the counts live in a global that done() collects
-- from every thread with thread:get().

statuses = {}
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function count_status(status)
   statuses[status] = (statuses[status] or 0) + 1
end

function response(status, headers, body)
   count_status(status)
end

-- A script may define report(thread) to print more of each thread's globals.
function done(summary, latency, requests)
   local total = {}
   for _, t in ipairs(threads) do
      for code, n in pairs(t:get("statuses")) do
         total[code] = (total[code] or 0) + n
      end
      if report then report(t) end
   end
   for code, n in pairs(total) do
      io.write(string.format("STATUS %d %d\n", code, n))
   end
end

-- "Name: value" strings (the script's arguments) -> headers table.
function parse_headers(args, first)
   local headers = {}
   for i = first, #args do
      local name, value = args[i]:match("^([^:]+):%s*(.*)$")
      assert(name, "bad header argument: " .. args[i])
      headers[name] = value
   end
   return headers
end
