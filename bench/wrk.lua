-- wrk script of the idgate benchmark.
-- With BENCH_TOKENS set (a file of tokens, one a line), every request carries the next token of
-- this thread's share of the file (line n goes to thread n mod BENCH_THREADS), starting at
-- position BENCH_TOKENS_START of that share, so no two requests share a token until the share is
-- used up (then it wraps round). done() prints one machine-readable line.

local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local tokens_file = os.getenv("BENCH_TOKENS")

if tokens_file then
  local tokens = {}
  local next_token = 0
  sent = 0

  function init(args)
    local share = tonumber(os.getenv("BENCH_THREADS"))
    local n = 0
    for line in io.lines(tokens_file) do
      if n % share == index then
        table.insert(tokens, "Bearer " .. line)
      end
      n = n + 1
    end
    next_token = tonumber(os.getenv("BENCH_TOKENS_START")) % #tokens
  end

  function request()
    next_token = next_token % #tokens + 1
    sent = sent + 1
    wrk.headers["Authorization"] = tokens[next_token]
    return wrk.format()
  end
end

function done(summary, latency, requests)
  local tokens_sent = 0
  local most = 0
  for _, thread in ipairs(threads) do
    local sent_by_thread = thread:get("sent") or 0
    tokens_sent = tokens_sent + sent_by_thread
    most = math.max(most, sent_by_thread)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"tokens_sent":%d,"tokens_max_thread":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), tokens_sent, most))
end
