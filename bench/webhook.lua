-- wrk script: POST MX-shaped PaymentSuccess notifications, each with a new payment id so
-- none is a duplicate. Usage (scripts/bench.py runs it):
--   wrk -t2 -c10 -d20s --latency -s bench/webhook.lua http://127.0.0.1:PORT/webhooks/mx/TOKEN \
--       -- MERCHANT_ID RUN_NONCE
-- Payment ids: nonce * 10^12 + thread * 10^10 + counter (distinct across threads and runs).
-- done() prints one line "WRKJSON {...}" with throughput, latency percentiles and errors.

local thread_count = 0
local threads = {}

function setup(thread)
    thread_count = thread_count + 1
    thread:set("tid", thread_count)
    table.insert(threads, thread)
end

local merchant, nonce, counter, template
local headers = { ["Content-Type"] = "application/json" }

function init(args)
    merchant = args[1] or "1000012345"
    nonce = tonumber(args[2] or "1")
    counter = 0
    template = '{"eventType":"PaymentSuccess","merchantId":"' .. merchant .. '","xmid":"5000012345",'
        .. '"dba":"Bench Practice","id":"%d","invoiceId":"","invoiceNumber":"2636",'
        .. '"transactionDate":"Aug 11 2025 10:02AM","localDate":"Aug 11 2025  6:02AM",'
        .. '"transactionTypeName":"Sale","paymentType":"Card","card":"Visa",'
        .. '"referenceNumber":"522310012345","authorizationCode":"A1B2C3","responseCode":"0",'
        .. '"replayId":"","pan4":"4242","totalAmount":"181.12","baseAmount":"181.12",'
        .. '"responseMessage":"Approved or completed successfully","customer":"Jane Doe",'
        .. '"customerNumber":"C00042","source":"Recurring","customFields":"","fee":"0.00"}'
end

function request()
    counter = counter + 1
    local id = nonce * 1000000000000 + tid * 10000000000 + counter
    return wrk.format("POST", nil, headers, string.format(template, id))
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
