-- Stopping the server from Neovim leaves no process behind, headless:
--
--   CARAVAN_BIN=target/debug/caravan CARAVAN_WS=dir-with-the-fixtures \
--   CARAVAN_NVIM_OUT=result.txt \
--   nvim --headless -u NONE -i NONE -n -c 'luafile lsp/tests/nvim/stop.lua'
--
-- Starts `caravan lsp` with Neovim's built-in client, attaches a buffer,
-- then stops the client as `:LspStop` does (vim.lsp.stop_client: a
-- `shutdown` request, then `exit`) and checks, while Neovim still runs,
-- that the server process has ended. Status 0 when it has, 1 otherwise.

local bin = os.getenv("CARAVAN_BIN")
local ws = os.getenv("CARAVAN_WS")
local out = os.getenv("CARAVAN_NVIM_OUT")
local log = {}

local function say(msg) table.insert(log, msg) end

local function finish(ok, msg)
  if msg then say(msg) end
  if out then
    local f = io.open(out, "w")
    if f then
      f:write(table.concat(log, "\n"), "\n", ok and "PASS" or "FAIL", "\n")
      f:close()
    end
  end
  if ok then vim.cmd("qall!") else vim.cmd("cquit 1") end
end

local function check(cond, msg)
  if not cond then error(msg, 2) end
  say("ok: " .. msg)
end

-- The pids of Neovim's child processes running `caravan lsp`.
local function servers()
  local pids = {}
  local list = vim.fn.system({ "ps", "-o", "pid=,args=", "--ppid", tostring(vim.fn.getpid()) })
  for line in list:gmatch("[^\n]+") do
    local pid, args = line:match("^%s*(%d+)%s+(.*)$")
    if pid and args:find("caravan", 1, true) and args:find("lsp", 1, true) then
      table.insert(pids, pid)
    end
  end
  return pids
end

local function alive(pid)
  -- A zombie (ended, not yet reaped) counts as ended.
  local stat = vim.fn.system({ "ps", "-o", "stat=", "-p", pid })
  return vim.v.shell_error == 0 and not stat:find("Z", 1, true)
end

local function run()
  check(bin ~= nil and ws ~= nil, "CARAVAN_BIN and CARAVAN_WS are set")
  local id = vim.lsp.start_client({ name = "caravan", cmd = { bin, "lsp" }, root_dir = ws })
  check(id ~= nil, "the client started")
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/main.cvn"))
  vim.lsp.buf_attach_client(0, id)
  local ok = vim.wait(20000, function()
    local c = vim.lsp.get_client_by_id(id)
    return c ~= nil and c.initialized
  end, 20)
  check(ok, "the server initialized")
  local pids = servers()
  check(#pids == 1, "one caravan lsp process runs (" .. #pids .. ")")
  local pid = pids[1]
  -- What :LspStop does.
  vim.lsp.stop_client(id)
  local gone = vim.wait(5000, function() return not alive(pid) end, 50)
  check(gone, "the server process " .. pid .. " ended after the client stopped it")
  check(vim.wait(5000, function() return vim.lsp.get_client_by_id(id) == nil end, 50),
    "the client saw the server exit")
end

local ok, err = pcall(run)
finish(ok, not ok and ("FAIL: " .. tostring(err)) or nil)
