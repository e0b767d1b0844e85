-- End-to-end test of `caravan lsp` in Neovim (0.7 or later), headless:
--
--   CARAVAN_BIN=target/debug/caravan CARAVAN_WS=dir-with-the-fixtures \
--   CARAVAN_NVIM_OUT=result.txt \
--   nvim --headless -u NONE -i NONE -n -c 'luafile lsp/tests/nvim/e2e.lua'
--
-- Starts the server with Neovim's built-in client, opens the example,
-- asserts on diagnostics, hover text and go-to-definition jumps (across
-- files and into the standard library), then quits: status 0 when every
-- check passed, 1 otherwise (the reason is written to CARAVAN_NVIM_OUT).

local bin = os.getenv("CARAVAN_BIN")
local ws = os.getenv("CARAVAN_WS")
local out = os.getenv("CARAVAN_NVIM_OUT")
local log = {}

local function say(msg)
  table.insert(log, msg)
end

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

-- Waits up to `ms` for `pred` (processing events meanwhile).
local function wait(ms, pred, what)
  local ok = vim.wait(ms, pred, 20)
  if not ok then error("timed out waiting for " .. what, 2) end
end

local function find(bufnr, needle)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    local col = line:find(needle, 1, true)
    if col then return i, col - 1 end
  end
  error("not found: " .. needle)
end

local function run()
  check(bin ~= nil and ws ~= nil, "CARAVAN_BIN and CARAVAN_WS are set")
  local client_id = vim.lsp.start_client({
    name = "caravan",
    cmd = { bin, "lsp" },
    root_dir = ws,
  })
  check(client_id ~= nil, "the client started")

  -- Diagnostics of the file with errors, as the CLI gives them.
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/broken.cvn"))
  local broken = vim.api.nvim_get_current_buf()
  vim.lsp.buf_attach_client(broken, client_id)
  wait(20000, function() return #vim.diagnostic.get(broken) >= 4 end, "diagnostics of broken.cvn")
  local diags = vim.diagnostic.get(broken)
  table.sort(diags, function(a, b) return a.lnum < b.lnum end)
  local function code(d)
    return d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code)
  end
  check(#diags == 4, "broken.cvn has 4 diagnostics (got " .. #diags .. ")")
  check(code(diags[1]) == "E0002" and diags[1].lnum == 2 and diags[1].col == 10,
    "a syntax error E0002 at line 3, column 11")
  check(diags[1].message:find("syntax error: unexpected `=`", 1, true) ~= nil,
    "its message is the CLI's: " .. diags[1].message)
  check(code(diags[2]) == "E0100" and diags[2].message:find("Type mismatch", 1, true),
    "a type mismatch E0100")
  check(diags[1].severity == vim.diagnostic.severity.ERROR, "errors are errors")

  -- The main file has none.
  vim.cmd("edit " .. vim.fn.fnameescape(ws .. "/main.cvn"))
  local main = vim.api.nvim_get_current_buf()
  vim.lsp.buf_attach_client(main, client_id)
  -- Its (empty) diagnostics arrive right after the didOpen.
  vim.wait(500, function() return false end, 50)
  check(#vim.diagnostic.get(main) == 0, "main.cvn has no diagnostics")

  -- Hover: the request as the client sends it, and the floating window.
  local row, col = find(main, "Geometry.area")
  vim.api.nvim_win_set_cursor(0, { row, col + 10 })
  local params = vim.lsp.util.make_position_params()
  local res = vim.lsp.buf_request_sync(main, "textDocument/hover", params, 20000)
  local text = ""
  for _, r in pairs(res or {}) do
    if r.result and r.result.contents then text = r.result.contents.value or "" end
  end
  check(text:find("area : Geometry.shape -> float", 1, true) ~= nil, "hover shows the type: " .. text)
  check(text:find("The area of a shape.", 1, true) ~= nil, "hover shows the doc comment")
  vim.lsp.buf.hover()
  local shown = nil
  wait(20000, function()
    for _, w in ipairs(vim.api.nvim_list_wins()) do
      if vim.api.nvim_win_get_config(w).relative ~= "" then
        local lines = vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false)
        local s = table.concat(lines, "\n")
        if s:find("area : Geometry.shape -> float", 1, true) then
          shown = s
          return true
        end
      end
    end
    return false
  end, "the hover window")
  check(shown ~= nil, "the hover window shows the type")
  -- Close the float (move the cursor away and back).
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    if vim.api.nvim_win_get_config(w).relative ~= "" then vim.api.nvim_win_close(w, true) end
  end

  -- Go to definition: across files.
  vim.api.nvim_set_current_buf(main)
  vim.api.nvim_win_set_cursor(0, { row, col + 10 })
  vim.lsp.buf.definition()
  wait(20000, function()
    return vim.api.nvim_buf_get_name(0):match("geometry%.cvn$") ~= nil
  end, "the jump to geometry.cvn")
  local cur = vim.api.nvim_win_get_cursor(0)
  check(cur[1] == 9 and cur[2] == 4, "the cursor is on `area` in geometry.cvn (line 9, col 4); got "
    .. cur[1] .. ":" .. cur[2])
  check(vim.api.nvim_get_current_line():find("^let area s") ~= nil, "that line defines area")

  -- And into the standard library.
  vim.api.nvim_set_current_buf(main)
  local lrow, lcol = find(main, "List.map")
  vim.api.nvim_win_set_cursor(0, { lrow, lcol + 6 })
  vim.lsp.buf.definition()
  wait(20000, function()
    return vim.api.nvim_buf_get_name(0):match("caravan/stdlib/list%.cvn$") ~= nil
  end, "the jump to the stdlib's list.cvn")
  check(vim.api.nvim_get_current_line():find("^let map ") ~= nil,
    "the cursor is on List.map's definition: " .. vim.api.nvim_get_current_line())

  vim.lsp.stop_client(client_id)
  finish(true)
end

local ok, err = pcall(run)
if not ok then finish(false, "FAILED: " .. tostring(err)) end
