/** Command ids, declared once (package.json contributes the same ids; a test checks they match). */
export const CommandId = {
  startVm: 'vlab.startVm',
  stopVm: 'vlab.stopVm',
  restartVm: 'vlab.restartVm',
  buildGuest: 'vlab.buildGuest',
  reloadDriver: 'vlab.reloadDriver',
  buildDriver: 'vlab.buildDriver',
  openTerminal: 'vlab.openTerminal',
  showRings: 'vlab.showRings',
  openRingsTrace: 'vlab.openRingsTrace',
  launchChatPair: 'vlab.launchChatPair',
  startChatServer: 'vlab.startChatServer',
  attachChatClient: 'vlab.attachChatClient',
  runBenchmark: 'vlab.runBenchmark',
  captureTraffic: 'vlab.captureTraffic',
  showLogs: 'vlab.showLogs',
  checkHost: 'vlab.checkHost',
  refresh: 'vlab.refresh',
  statusActions: 'vlab.statusActions',
} as const;

export type CommandIdValue = (typeof CommandId)[keyof typeof CommandId];
