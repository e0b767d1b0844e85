-- Checks the Neovim configuration of lsp/editors/nvim/caravan.lua (loaded
-- with -u): opening a .cvn file starts `caravan lsp` from PATH and
-- attaches it; a second file of the same directory shares the client.
--
--   PATH=target/debug:$PATH CARAVAN_WS=dir CARAVAN_NVIM_OUT=result.txt \
--   nvim --headless -u lsp/editors/nvim/caravan.lua -i NONE -n \
--     -c 'luafile lsp/tests/nvim/config.lua'

local ws = os.getenv("CARAVAN_WS")
local out = os.getenv("CARAVAN_NVIM_OUT")
local log = {}

local function finish(ok, msg)
  if msg then table.insert(log, msg) end
  local f = io.open(out, "w")
  if f then
    f:write(table.concat(log, "\n"), "\n", ok and "PASS" or "FAIL", "\n")
    f:close()
  end
  if ok then vim.cmd("qall!") else vim.cmd("cquit 1") end
end

local function check(cond, msg)
  if not cond then error(msg, 2) end
  table.insert(log, "ok: " .. msg)
end

local function run()
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/main.cvn"))
  check(vim.wait(20000, function() return #vim.lsp.buf_get_clients(0) > 0 end, 20),
    "opening main.cvn attaches caravan lsp")
  vim.api.nvim_win_set_cursor(0, { 4, 6 })
  local res = vim.lsp.buf_request_sync(0, "textDocument/hover", vim.lsp.util.make_position_params(), 20000)
  local text = ""
  for _, r in pairs(res or {}) do
    if r.result and r.result.contents then text = r.result.contents.value or "" end
  end
  check(text:find("total : Geometry.shape list -> float", 1, true) ~= nil, "hover answers: " .. text)
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/geometry.cvn"))
  check(vim.wait(20000, function() return #vim.lsp.buf_get_clients(0) > 0 end, 20),
    "geometry.cvn is attached too")
  check(#vim.lsp.get_active_clients() == 1, "by the same client")
  finish(true)
end

local ok, err = pcall(run)
if not ok then finish(false, "FAILED: " .. tostring(err)) end
