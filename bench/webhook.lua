-- wrk script: POST MX-shaped PaymentSuccess notifications, each with a new payment id so
-- none is a duplicate. Usage (scripts/bench.py runs it, with the body of its mx_body()):
--   wrk -t2 -c10 -d20s --latency -s bench/webhook.lua http://127.0.0.1:PORT/webhooks/mx/TOKEN \
--       -- BODY_TEMPLATE RUN_NONCE
-- BODY_TEMPLATE is the JSON body with __ID__ where the payment id goes.
-- Payment ids: nonce * 10^12 + thread * 10^10 + counter (distinct across threads and runs).
-- done() prints one line "WRKJSON {...}" with throughput, latency percentiles and errors.

local thread_count = 0

function setup(thread)
    thread_count = thread_count + 1
    thread:set("tid", thread_count)
end

local template, nonce, counter
local headers = { ["Content-Type"] = "application/json" }

function init(args)
    template = args[1]
    nonce = tonumber(args[2] or "1")
    counter = 0
end

function request()
    counter = counter + 1
    local id = string.format("%d", nonce * 1000000000000 + tid * 10000000000 + counter)
    return wrk.format("POST", nil, headers, (template:gsub("__ID__", id)))
end

function done(summary, latency, requests)
    local non2xx = summary.errors.status
    io.write(string.format(
        'WRKJSON {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, '
            .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
        summary.requests, summary.duration, non2xx,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean
    ))
end
