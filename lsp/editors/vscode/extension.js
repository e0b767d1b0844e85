// Starts `caravan lsp` for .cvn files.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

exports.activate = function () {
  const command = vscode.workspace.getConfiguration("caravan").get("path", "caravan");
  client = new LanguageClient(
    "caravan",
    "Caravan",
    { command, args: ["lsp"] },
    { documentSelector: [{ scheme: "file", language: "caravan" }] }
  );
  return client.start();
};

exports.deactivate = function () {
  return client ? client.stop() : undefined;
};
