-- wrk script: a realistic announce mix. 1,000 torrents with random binary
-- info hashes, 100,000 peer ids (100 per torrent), half of them seeders,
-- and 10% scrapes. The hashes come from a fixed seed, so every target sees
-- the same torrents. Arguments (after --): scrape share, "populate" (or
-- anything else), number of peers, number of torrents (at most 1,000).
local TORRENTS = 1000
local PEERS = 100000

local function escape(bytes)
  return (bytes:gsub(".", function(c) return string.format("%%%02X", c:byte()) end))
end

math.randomseed(20261124)
local hashes = {}
for t = 1, TORRENTS do
  local b = {}
  for i = 1, 20 do b[i] = string.char(math.random(0, 255)) end
  hashes[t] = escape(table.concat(b))
end

local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

failures = 0
local scrape_share = 0.1
-- "populate": announce every peer once, in order, before random traffic.
local next_peer = nil
function init(args)
  math.randomseed(os.time() * 1000 + id)
  if args[1] then scrape_share = tonumber(args[1]) end
  if args[2] == "populate" then next_peer = 0 end
  -- a smaller population, for quick runs
  if args[3] then PEERS = tonumber(args[3]) end
  -- fewer torrents: "1" puts every peer into one swarm (bench/hot-swarm.mjs)
  if args[4] then TORRENTS = tonumber(args[4]) end
end

function request()
  if next_peer and next_peer < PEERS then
    local p = next_peer
    next_peer = next_peer + 1
    return announce(p)
  end
  if math.random() < scrape_share then
    local t = math.random(TORRENTS)
    return wrk.format("GET", "/scrape?info_hash=" .. hashes[t])
  end
  return announce(math.random(PEERS) - 1)
end

function announce(p)
  local t = (p % TORRENTS) + 1
  local left = (p % 2 == 0) and 0 or 1000
  local path = string.format(
    "/announce?info_hash=%s&peer_id=-WK0001-%012d&port=%d&uploaded=0&downloaded=0&left=%d&compact=1&numwant=50&key=%08x",
    hashes[t], p, 10000 + (p % 50000), left, p)
  local ip = string.format("10.%d.%d.%d", bit.band(bit.rshift(p, 16), 255), bit.band(bit.rshift(p, 8), 255), bit.band(p, 255))
  return wrk.format("GET", path, { ["cf-connecting-ip"] = ip })
end

function response(status, headers, body)
  if status ~= 200 or body:sub(1, 17) == "d14:failure reaso" then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("failures") or 0)
  end
  io.write(string.format("FAILURES %d\n", total))
end
