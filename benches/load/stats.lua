-- wrk script of the load benchmark (benches/load/run.sh).
--
-- Environment:
--   WRK_METHOD        request method (default GET)
--   WRK_BODY          request body (sent with content-type WRK_CTYPE)
--   WRK_CTYPE         default application/json
--   WRK_HEADER        one more request header, "Name: value" (the proxy
--                     benchmark's X-Signature)
--   WRK_COUNT_STATUS  1: count responses by status (503s by x-wasmgate-error);
--                     slower, only for the overload scenario
--
-- Prints one machine-readable line at the end:
--   RESULT requests=N rps=R p50_us=.. p90_us=.. p99_us=.. max_us=.. errors=.. non2xx=.. [status:200=N ...]

wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body ~= nil and body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = os.getenv("WRK_CTYPE") or "application/json"
end

local extra = os.getenv("WRK_HEADER")
if extra ~= nil and extra ~= "" then
  local name, value = extra:match("^([^:]+):%s*(.*)$")
  if name then
    wrk.headers[name] = value
  end
end

local count_status = os.getenv("WRK_COUNT_STATUS") == "1"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
end

if count_status then
  function response(status, headers, body)
    local key = tostring(status)
    if status >= 400 then
      key = key .. "/" .. (headers["x-wasmgate-error"] or "-")
    end
    statuses[key] = (statuses[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local line = string.format(
    "RESULT requests=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d errors=%d non2xx=%d",
    summary.requests, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status)
  if count_status then
    local total = {}
    for _, t in ipairs(threads) do
      local s = t:get("statuses")
      for k, v in pairs(s) do
        total[k] = (total[k] or 0) + v
      end
    end
    for k, v in pairs(total) do
      line = line .. string.format(" status:%s=%d", k, v)
    end
  end
  io.write(line .. "\n")
end
