-- Caravan in Neovim (0.7 or later): `caravan lsp` for *.cvn files.
-- Put this file in ~/.config/nvim/plugin/ (or `dofile` it from init.lua);
-- `caravan` must be on PATH (`cargo install --path .` in the repository).
local clients = {} -- one server per project directory

vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
  pattern = "*.cvn",
  callback = function(args)
    vim.bo[args.buf].filetype = "ocaml" -- close enough for syntax colours
    local root = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(args.buf), ":p:h")
    if not clients[root] then
      clients[root] = vim.lsp.start_client({
        name = "caravan",
        cmd = { "caravan", "lsp" },
        root_dir = root,
      })
    end
    if clients[root] then
      vim.lsp.buf_attach_client(args.buf, clients[root])
    end
  end,
})
