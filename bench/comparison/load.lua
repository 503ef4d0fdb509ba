-- The load bench/api.py puts on one endpoint (wrk). bench/api.py prepends the run's parameters:
--   pairs_    {{token, case id}, ...}: the agents and their cases, taken in turn
--   run       a string new for every cell, so that Idempotency-Keys never repeat
--   path      the endpoint's path
--   nthreads  wrk's threads
--   amount    the amount decided (text)
-- and reads the BENCH lines this script prints at the end.

local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
  thread:set("bad", 0)
  thread:set("first_bad", "")
end

function request()
  counter = counter + 1
  local pair = pairs_[((counter * nthreads + tid) % #pairs_) + 1]
  local body = string.format(
    '{"case": %d, "kind": "refund", "amount": "%s", "currency": "EUR", "rationale": "benchmark"}', pair[2], amount)
  return wrk.format("POST", path, {
    ["Authorization"] = "Token " .. pair[1],
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = run .. "-" .. tid .. "-" .. counter,
  }, body)
end

-- Every answer is looked at: a non-2xx one makes the cell not count, and the first is shown.
function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("bad")
    if first == "" then first = thread:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d non2xx=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
  io.write("BENCH first_non2xx=" .. string.gsub(first, "\n", " ") .. "\n")
end
