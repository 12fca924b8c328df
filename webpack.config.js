// Bundles the VS Code extension (Node, extension host) and the webview front ends (browser).
// The vscode module is provided by the host; ssh2's optional native speed-ups are left out
// (it falls back to pure JS, as it does under npm 11 which skips install scripts).
'use strict';
const path = require('node:path');
const webpack = require('webpack');

const tsRule = {
  test: /\.ts$/,
  exclude: /node_modules/,
  // Type checking is tsc's job (npm run build:ts); the bundler only transpiles.
  use: [{ loader: 'ts-loader', options: { transpileOnly: true, onlyCompileBundledFiles: true } }],
};

/** @type {import('webpack').Configuration} */
const extension = {
  name: 'extension',
  target: 'node20',
  entry: { extension: './extension/vscode/extension.ts' },
  output: { path: path.resolve(__dirname, 'dist'), filename: '[name].js', libraryTarget: 'commonjs2', clean: true },
  externals: { vscode: 'commonjs vscode', 'cpu-features': 'commonjs cpu-features' },
  externalsPresets: { node: true },
  // Keep real paths: the core finds the repository (bin/vlab.js, guest/) relative to its files.
  node: { __dirname: false, __filename: false },
  resolve: { extensions: ['.ts', '.js'] },
  module: { rules: [tsRule] },
  devtool: 'nosources-source-map',
  // ssh2 loads its optional native crypto inside try/catch and falls back to pure JS.
  plugins: [new webpack.IgnorePlugin({ resourceRegExp: /sshcrypto\.node$/ })],
  ignoreWarnings: [{ module: /node_modules[\\/]ssh2/ }],
  performance: { hints: false },
};

/** @type {import('webpack').Configuration} */
const webviews = {
  name: 'webviews',
  target: 'web',
  entry: { rings: './media/rings/view.ts' },
  output: { path: path.resolve(__dirname, 'media', 'build'), filename: '[name].js', clean: true },
  resolve: { extensions: ['.ts', '.js'] },
  module: { rules: [tsRule] },
  devtool: false,
  performance: { hints: false },
};

module.exports = [extension, webviews];
