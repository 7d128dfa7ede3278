#!/usr/bin/env node
// An independent, schema-strict OCPP charge point for interoperability tests of siteedge.
//
// Built on the npm package ocpp-rpc, not on the Python `ocpp` library siteedge uses, so the two
// sides share no schema code. With strictMode every CALL and CALLRESULT in both directions is
// validated against the official OCPP 1.6 / 2.0.1 JSON schemas: a schema violation by siteedge
// (in a reply to us or in a call it makes) is recorded and fails the run.
//
// Usage:
//   node charger.mjs --url ws://127.0.0.1:PORT/ocpp --id CP-X --protocol ocpp1.6|ocpp2.0.1
//                    --scenario full-session|serve [--password SECRET] [--connectors N]
//                    [--connector N] [--id-tag TAG] [--meter-start WH] [--energy-step WH]
//                    [--samples N] [--timeout-ms MS]
//
// Scenarios:
//   full-session  boot, status, authorize, one transaction with meter values, stop, heartbeat,
//                 then each other charger -> CSMS message of the version once; exit.
//   serve         boot and status, print {"ready": true}, then answer siteedge's calls (remote
//                 start/stop run a real transaction) until stdin closes or reads "quit".
//
// Output: one JSON line per step {"dir": "out"|"in", "action", "request", "response"} (out = the
// charger's call, in = siteedge's), then {"result": "ok"} (exit 0) or {"result": "error", ...}
// (exit 1). Usage errors exit 2.

import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import rpc from 'ocpp-rpc';

const { RPCClient, createRPCError } = rpc;

const USAGE = 'usage: node charger.mjs --url WS_URL --id CP_ID --protocol ocpp1.6|ocpp2.0.1 '
  + '--scenario full-session|serve [--password P] [--connectors N] [--connector N] [--id-tag T] '
  + '[--meter-start WH] [--energy-step WH] [--samples N] [--timeout-ms MS]';

function parseOptions() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      id: { type: 'string' },
      protocol: { type: 'string', default: 'ocpp1.6' },
      scenario: { type: 'string', default: 'full-session' },
      password: { type: 'string' },
      connectors: { type: 'string', default: '1' },
      connector: { type: 'string', default: '1' },
      'id-tag': { type: 'string', default: 'INTEROP-TAG' },
      'meter-start': { type: 'string', default: '1000' },
      'energy-step': { type: 'string', default: '500' },
      samples: { type: 'string', default: '2' },
      'timeout-ms': { type: 'string', default: '60000' },
    },
    strict: true,
  });
  const ints = ['connectors', 'connector', 'meter-start', 'energy-step', 'samples', 'timeout-ms'];
  for (const name of ints) {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
    values[name] = n;
  }
  if (!values.url || !values.id) throw new Error('--url and --id are required');
  if (!['ocpp1.6', 'ocpp2.0.1'].includes(values.protocol)) throw new Error('bad --protocol');
  if (!['full-session', 'serve'].includes(values.scenario)) throw new Error('bad --scenario');
  if (values.connector < 1 || values.connector > values.connectors) {
    throw new Error('--connector must be within 1..--connectors');
  }
  return values;
}

const print = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const now = () => new Date().toISOString();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A run failure: its message ends the run with {"result": "error"}. */
class Failure extends Error {}

/** The charge point: one strict RPC client plus the state of its connectors and transaction. */
class Charger {
  constructor(opt) {
    this.opt = opt;
    this.v16 = opt.protocol === 'ocpp1.6';
    this.violations = []; // strict-mode schema failures, in either direction
    this.problems = []; // anything else that went wrong in a background step
    this.tx = null; // {id, connector, idTag, meterStart, wh, seqNo?}
    this.meterWh = opt['meter-start'];
    this.queue = Promise.resolve(); // follow-up work started after answering a CSMS call
    this.client = new RPCClient({
      endpoint: opt.url,
      identity: opt.id,
      protocols: [opt.protocol],
      password: opt.password,
      strictMode: true,
      reconnect: false, // one connection: a drop is an error, not something to paper over
      callTimeoutMs: 15000,
    });
    this.client.on('strictValidationFailure', (ev) => {
      // outbound=true: our own message failed (a bug here); false: siteedge's did.
      const who = ev.outbound ? 'charger' : 'siteedge';
      const what = ev.isCall ? 'call' : 'reply';
      const v = { by: who, kind: what, action: ev.method, error: ev.error?.message, params: ev.params };
      if (!ev.isCall) v.result = ev.result;
      this.violations.push(v);
      print({ violation: v });
    });
    this.client.on('badMessage', (ev) => {
      this.problems.push(`bad message from siteedge: ${ev.error?.message}`);
    });
    this.handleCalls();
  }

  // --- calls to siteedge ---------------------------------------------------------------------

  /** One call to siteedge, printed as a step; a CALLERROR or invalid reply fails the run. */
  async call(action, request) {
    let response;
    try {
      response = await this.client.call(action, request);
    } catch (err) {
      print({ dir: 'out', action, request, error: { code: err.rpcErrorCode, message: err.message } });
      throw new Failure(`${action} failed: ${err.rpcErrorCode ?? ''} ${err.message}`);
    }
    print({ dir: 'out', action, request, response });
    return response;
  }

  expect(action, what, got, want) {
    if (got !== want) throw new Failure(`${action}: ${what} is ${JSON.stringify(got)}, expected ${want}`);
  }

  async boot() {
    const request = this.v16
      ? {
          chargePointVendor: 'siteedge-interop',
          chargePointModel: 'ocpp-rpc-strict',
          chargePointSerialNumber: `SN-${this.opt.id}`,
          firmwareVersion: '1.0.0',
        }
      : {
          reason: 'PowerUp',
          chargingStation: {
            vendorName: 'siteedge-interop',
            model: 'ocpp-rpc-strict',
            serialNumber: `SN-${this.opt.id}`,
            firmwareVersion: '1.0.0',
          },
        };
    const res = await this.call('BootNotification', request);
    this.expect('BootNotification', 'status', res.status, 'Accepted');
  }

  async heartbeat() {
    await this.call('Heartbeat', {});
  }

  /** StatusNotification; status in 1.6 words, mapped to 2.0.1 connector states when needed. */
  async status(connector, status) {
    if (this.v16) {
      await this.call('StatusNotification', { connectorId: connector, errorCode: 'NoError', status, timestamp: now() });
      return;
    }
    const word = ['Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing'].includes(status)
      ? 'Occupied'
      : status;
    await this.call('StatusNotification', { timestamp: now(), connectorStatus: word, evseId: connector, connectorId: 1 });
  }

  async allAvailable() {
    if (this.v16) await this.status(0, 'Available'); // connector 0: the charge point itself
    for (let c = 1; c <= this.opt.connectors; c += 1) await this.status(c, 'Available');
  }

  async authorize(idTag) {
    if (this.v16) {
      const res = await this.call('Authorize', { idTag });
      this.expect('Authorize', 'idTagInfo.status', res.idTagInfo.status, 'Accepted');
    } else {
      const res = await this.call('Authorize', { idToken: { idToken: idTag, type: 'ISO14443' } });
      this.expect('Authorize', 'idTokenInfo.status', res.idTokenInfo.status, 'Accepted');
    }
  }

  /** The energy register (and power) as a meter value with the given reading context. */
  sample(context, withPower) {
    const ts = now();
    if (this.v16) {
      const values = [{
        value: String(this.meterWh),
        context,
        measurand: 'Energy.Active.Import.Register',
        location: 'Outlet',
        unit: 'Wh',
      }];
      if (withPower) values.push({ value: '7400', context, measurand: 'Power.Active.Import', unit: 'W' });
      return { timestamp: ts, sampledValue: values };
    }
    const values = [{
      value: this.meterWh,
      context,
      measurand: 'Energy.Active.Import.Register',
      location: 'Outlet',
      unitOfMeasure: { unit: 'Wh' },
    }];
    if (withPower) {
      values.push({ value: 11000, context, measurand: 'Power.Active.Import', unitOfMeasure: { unit: 'W' } });
    }
    return { timestamp: ts, sampledValue: values };
  }

  /** Start a transaction on a connector: remoteStartId set when siteedge asked for it (2.0.1). */
  async startTransaction(connector, idTag, remoteStartId) {
    if (this.tx) throw new Failure(`a transaction is already running on connector ${this.tx.connector}`);
    await this.status(connector, 'Preparing');
    const meterStart = this.meterWh;
    if (this.v16) {
      const res = await this.call('StartTransaction', { connectorId: connector, idTag, meterStart, timestamp: now() });
      this.expect('StartTransaction', 'idTagInfo.status', res.idTagInfo.status, 'Accepted');
      this.tx = { id: res.transactionId, connector, idTag, meterStart, begin: this.sample('Transaction.Begin') };
    } else {
      this.tx = { id: randomUUID(), connector, idTag, meterStart, seqNo: 0 };
      const request = {
        eventType: 'Started',
        timestamp: now(),
        triggerReason: remoteStartId === undefined ? 'Authorized' : 'RemoteStart',
        seqNo: this.tx.seqNo,
        transactionInfo: { transactionId: this.tx.id, chargingState: 'EVConnected' },
        idToken: { idToken: idTag, type: remoteStartId === undefined ? 'ISO14443' : 'Central' },
        evse: { id: connector, connectorId: 1 },
        meterValue: [this.sample('Transaction.Begin', false)],
      };
      if (remoteStartId !== undefined) request.transactionInfo.remoteStartId = remoteStartId;
      const res = await this.call('TransactionEvent', request);
      this.expect('TransactionEvent', 'idTokenInfo.status', res.idTokenInfo?.status, 'Accepted');
    }
    await this.status(connector, 'Charging');
  }

  /** Energy flows: the register grows by --energy-step and is reported as a periodic sample. */
  async meterValues() {
    this.meterWh += this.opt['energy-step'];
    if (this.v16) {
      await this.call('MeterValues', {
        connectorId: this.tx.connector,
        transactionId: this.tx.id,
        meterValue: [this.sample('Sample.Periodic', true)],
      });
      return;
    }
    this.tx.seqNo += 1;
    await this.call('TransactionEvent', {
      eventType: 'Updated',
      timestamp: now(),
      triggerReason: 'MeterValuePeriodic',
      seqNo: this.tx.seqNo,
      transactionInfo: { transactionId: this.tx.id, chargingState: 'Charging' },
      evse: { id: this.tx.connector, connectorId: 1 },
      meterValue: [this.sample('Sample.Periodic', true)],
    });
  }

  /** Stop the running transaction: 1.6 Reason / 2.0.1 stoppedReason, and the 2.0.1 triggerReason. */
  async stopTransaction(reason, trigger) {
    const tx = this.tx;
    if (this.v16) {
      await this.status(tx.connector, 'Finishing');
      await this.call('StopTransaction', {
        transactionId: tx.id,
        idTag: tx.idTag,
        meterStop: this.meterWh,
        timestamp: now(),
        reason,
        transactionData: [tx.begin, this.sample('Transaction.End', false)],
      });
    } else {
      tx.seqNo += 1;
      await this.call('TransactionEvent', {
        eventType: 'Ended',
        timestamp: now(),
        triggerReason: trigger,
        seqNo: tx.seqNo,
        transactionInfo: { transactionId: tx.id, chargingState: 'Idle', stoppedReason: reason },
        evse: { id: tx.connector, connectorId: 1 },
        meterValue: [this.sample('Transaction.End', false)],
      });
    }
    this.tx = null;
    await this.status(tx.connector, 'Available');
  }

  /** Queue follow-up work after a CSMS call was answered: the reply leaves first, jobs run in order. */
  later(what, fn) {
    // One after the other, as a charger's firmware would: a Reset never overtakes a remote start.
    this.queue = this.queue.then(() => sleep(20)).then(fn).catch((err) => {
      this.problems.push(`${what}: ${err.message}`);
    });
  }

  async settle() {
    let seen;
    do {
      seen = this.queue;
      await seen;
    } while (seen !== this.queue);
  }

  // --- calls from siteedge -------------------------------------------------------------------

  /** Register a handler that prints each CSMS call as a step. */
  on(action, fn) {
    this.client.handle(action, async ({ params }) => {
      const response = await fn(params);
      print({ dir: 'in', action, request: params, response });
      return response;
    });
  }

  handleCalls() {
    // Anything not handled below: a real CALLERROR, as a charger without the feature sends.
    this.client.handle(({ method, params }) => {
      print({ dir: 'in', action: method, request: params, error: 'NotImplemented' });
      throw createRPCError('NotImplemented', `${method} is not implemented by this charger`);
    });
    if (this.v16) this.handleCalls16();
    else this.handleCalls201();
  }

  /** Send what TriggerMessage asked for; connector/EVSE number or all of them. */
  async triggered(message, connector) {
    if (message === 'StatusNotification') {
      if (connector) await this.status(connector, this.tx?.connector === connector ? 'Charging' : 'Available');
      else await this.allAvailable();
    } else if (message === 'Heartbeat') {
      await this.heartbeat();
    } else if (message === 'BootNotification') {
      await this.boot();
    } else if (message === 'MeterValues') {
      if (this.tx) await this.meterValues();
    }
  }

  async reboot(hard) {
    if (this.tx) {
      await this.stopTransaction(this.v16 ? (hard ? 'HardReset' : 'SoftReset') : 'ImmediateReset', 'ResetCommand');
    }
    await this.boot();
    await this.allAvailable();
  }

  handleCalls16() {
    const config = new Map([
      ['HeartbeatInterval', { readonly: false, value: '60' }],
      ['MeterValueSampleInterval', { readonly: false, value: '60' }],
      ['NumberOfConnectors', { readonly: true, value: String(this.opt.connectors) }],
      ['AuthorizeRemoteTxRequests', { readonly: false, value: 'false' }],
    ]);
    const triggerable = ['StatusNotification', 'Heartbeat', 'BootNotification', 'MeterValues'];
    this.on('TriggerMessage', ({ requestedMessage, connectorId }) => {
      if (!triggerable.includes(requestedMessage)) return { status: 'NotImplemented' };
      this.later('TriggerMessage', () => this.triggered(requestedMessage, connectorId));
      return { status: 'Accepted' };
    });
    this.on('GetConfiguration', ({ key }) => {
      const wanted = key ?? [...config.keys()];
      return {
        configurationKey: wanted.filter((k) => config.has(k)).map((k) => ({ key: k, ...config.get(k) })),
        unknownKey: wanted.filter((k) => !config.has(k)),
      };
    });
    this.on('ChangeConfiguration', ({ key, value }) => {
      const entry = config.get(key);
      if (!entry) return { status: 'NotSupported' };
      if (entry.readonly) return { status: 'Rejected' };
      entry.value = value;
      return { status: 'Accepted' };
    });
    this.on('RemoteStartTransaction', ({ connectorId, idTag }) => {
      if (this.tx) return { status: 'Rejected' };
      this.later('RemoteStartTransaction', async () => {
        await this.startTransaction(connectorId ?? this.opt.connector, idTag);
        await this.meterValues();
      });
      return { status: 'Accepted' };
    });
    this.on('RemoteStopTransaction', ({ transactionId }) => {
      if (this.tx?.id !== transactionId) return { status: 'Rejected' };
      this.later('RemoteStopTransaction', async () => {
        await this.meterValues();
        await this.stopTransaction('Remote', 'RemoteStop');
      });
      return { status: 'Accepted' };
    });
    this.on('Reset', ({ type }) => {
      this.later('Reset', () => this.reboot(type === 'Hard'));
      return { status: 'Accepted' };
    });
    this.on('ChangeAvailability', () => ({ status: 'Accepted' }));
    this.on('UnlockConnector', () => ({ status: 'Unlocked' }));
    this.on('ClearCache', () => ({ status: 'Accepted' }));
    this.on('DataTransfer', () => ({ status: 'UnknownVendorId' }));
    this.on('GetLocalListVersion', () => ({ listVersion: 0 }));
    this.on('SendLocalList', () => ({ status: 'Accepted' }));
    this.on('ReserveNow', () => ({ status: 'Accepted' }));
    this.on('CancelReservation', () => ({ status: 'Accepted' }));
    this.on('SetChargingProfile', () => ({ status: 'Accepted' }));
    this.on('ClearChargingProfile', () => ({ status: 'Accepted' }));
    this.on('GetCompositeSchedule', () => ({ status: 'Rejected' }));
    this.on('UpdateFirmware', () => ({}));
    this.on('GetDiagnostics', () => ({}));
  }

  handleCalls201() {
    // component.variable -> value: a few of the standard (OCPP 2.0.1 part 2 appendix) variables.
    const variables = new Map([
      ['OCPPCommCtrlr.HeartbeatInterval', '60'],
      ['SampledDataCtrlr.TxUpdatedInterval', '60'],
      ['AuthCtrlr.AuthorizeRemoteStart', 'false'],
      ['DeviceDataCtrlr.ItemsPerMessage', '10'],
    ]);
    const triggerable = ['StatusNotification', 'Heartbeat', 'BootNotification', 'MeterValues'];
    this.on('TriggerMessage', ({ requestedMessage, evse }) => {
      if (!triggerable.includes(requestedMessage)) return { status: 'NotImplemented' };
      this.later('TriggerMessage', () => this.triggered(requestedMessage, evse?.id));
      return { status: 'Accepted' };
    });
    this.on('GetVariables', ({ getVariableData }) => ({
      getVariableResult: getVariableData.map(({ component, variable, attributeType }) => {
        const value = variables.get(`${component.name}.${variable.name}`);
        const known = [...variables.keys()].some((k) => k.startsWith(`${component.name}.`));
        const result = {
          attributeStatus: value !== undefined ? 'Accepted' : known ? 'UnknownVariable' : 'UnknownComponent',
          component,
          variable,
        };
        if (attributeType) result.attributeType = attributeType;
        if (value !== undefined) result.attributeValue = value;
        return result;
      }),
    }));
    this.on('SetVariables', ({ setVariableData }) => ({
      setVariableResult: setVariableData.map(({ component, variable, attributeValue }) => {
        const key = `${component.name}.${variable.name}`;
        const known = variables.has(key);
        if (known) variables.set(key, attributeValue);
        return { attributeStatus: known ? 'Accepted' : 'UnknownVariable', component, variable };
      }),
    }));
    this.on('GetBaseReport', ({ requestId }) => {
      this.later('GetBaseReport', async () => {
        const reportData = [...variables].map(([key, value]) => {
          const [component, variable] = key.split('.');
          return {
            component: { name: component },
            variable: { name: variable },
            variableAttribute: [{ type: 'Actual', value }],
          };
        });
        await this.call('NotifyReport', { requestId, generatedAt: now(), seqNo: 0, tbc: false, reportData });
      });
      return { status: 'Accepted' };
    });
    this.on('RequestStartTransaction', ({ idToken, remoteStartId, evseId }) => {
      if (this.tx) return { status: 'Rejected' };
      this.later('RequestStartTransaction', async () => {
        await this.startTransaction(evseId ?? this.opt.connector, idToken.idToken, remoteStartId);
        await this.meterValues();
      });
      return { status: 'Accepted' };
    });
    this.on('RequestStopTransaction', ({ transactionId }) => {
      if (this.tx?.id !== transactionId) return { status: 'Rejected' };
      this.later('RequestStopTransaction', async () => {
        await this.meterValues();
        await this.stopTransaction('Remote', 'RemoteStop');
      });
      return { status: 'Accepted' };
    });
    this.on('Reset', ({ type }) => {
      this.later('Reset', () => this.reboot(type === 'Immediate'));
      return { status: 'Accepted' };
    });
    this.on('ChangeAvailability', () => ({ status: 'Accepted' }));
    this.on('UnlockConnector', () => ({ status: 'Unlocked' }));
    this.on('ClearCache', () => ({ status: 'Accepted' }));
    this.on('DataTransfer', () => ({ status: 'UnknownVendorId' }));
    this.on('GetLocalListVersion', () => ({ versionNumber: 0 }));
    this.on('SendLocalList', () => ({ status: 'Accepted' }));
    this.on('ReserveNow', () => ({ status: 'Accepted' }));
    this.on('CancelReservation', () => ({ status: 'Accepted' }));
    this.on('SetChargingProfile', () => ({ status: 'Accepted' }));
    this.on('ClearChargingProfile', () => ({ status: 'Accepted' }));
    this.on('GetCompositeSchedule', () => ({ status: 'Rejected' }));
    this.on('UpdateFirmware', () => ({ status: 'Accepted' }));
    this.on('GetLog', () => ({ status: 'Accepted', filename: `${this.opt.id}.log` }));
    this.on('SetDisplayMessage', () => ({ status: 'Accepted' }));
  }

  /** The rest of issue 3 item 4: every other charger -> siteedge message of the version, once. */
  async reports() {
    const ts = now();
    await this.call('DataTransfer', { vendorId: 'siteedge-interop', messageId: 'ping', data: 'hello' });
    await this.call('SecurityEventNotification', { type: 'StartupOfTheDevice', timestamp: ts });
    await this.call('LogStatusNotification', { status: 'Idle', requestId: 1 });
    if (this.v16) {
      await this.call('FirmwareStatusNotification', { status: 'Idle' });
      await this.call('DiagnosticsStatusNotification', { status: 'Idle' });
      await this.call('SignedFirmwareStatusNotification', { status: 'Installed', requestId: 1 });
      return;
    }
    await this.call('FirmwareStatusNotification', { status: 'Installed', requestId: 1 });
    await this.call('MeterValues', { evseId: this.opt.connector, meterValue: [this.sample('Sample.Clock', false)] });
    await this.call('NotifyEvent', {
      generatedAt: ts,
      seqNo: 0,
      eventData: [{
        eventId: 1,
        timestamp: ts,
        trigger: 'Delta',
        actualValue: 'Available',
        eventNotificationType: 'HardWiredNotification',
        component: { name: 'Connector', evse: { id: this.opt.connector, connectorId: 1 } },
        variable: { name: 'AvailabilityState' },
      }],
    });
    await this.call('NotifyReport', {
      requestId: 1,
      generatedAt: ts,
      seqNo: 0,
      reportData: [{
        component: { name: 'OCPPCommCtrlr' },
        variable: { name: 'HeartbeatInterval' },
        variableAttribute: [{ type: 'Actual', value: '60' }],
      }],
    });
  }

  // --- scenarios -----------------------------------------------------------------------------

  async fullSession() {
    const { connector, samples } = this.opt;
    const idTag = this.opt['id-tag'];
    await this.boot();
    await this.allAvailable();
    await this.authorize(idTag);
    await this.startTransaction(connector, idTag);
    for (let i = 0; i < samples; i += 1) await this.meterValues();
    await this.stopTransaction('EVDisconnected', 'EVDeparted');
    await this.heartbeat();
    await this.reports();
  }

  async serve() {
    await this.boot();
    await this.allAvailable();
    print({ ready: true });
    const closed = new Promise((resolve) => {
      this.client.once('close', (ev) => resolve(ev));
    });
    const quit = new Promise((resolve) => {
      const lines = createInterface({ input: process.stdin });
      lines.on('line', (line) => { if (line.trim() === 'quit') resolve(); });
      lines.on('close', resolve);
    });
    const ev = await Promise.race([quit.then(() => null), closed]);
    if (ev) throw new Failure(`siteedge closed the connection: ${ev.code} ${ev.reason}`);
  }

  async run() {
    try {
      await this.client.connect();
    } catch (err) {
      throw new Failure(`cannot connect: ${err.code ?? ''} ${err.message}`);
    }
    if (this.client.protocol !== this.opt.protocol) {
      throw new Failure(`siteedge chose subprotocol ${this.client.protocol}, not ${this.opt.protocol}`);
    }
    if (this.opt.scenario === 'full-session') await this.fullSession();
    else await this.serve();
    await this.settle();
  }
}

async function main() {
  let opt;
  try {
    opt = parseOptions();
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    return 2;
  }
  const cp = new Charger(opt);
  let failure = null;
  const watchdog = setTimeout(() => {
    print({ result: 'error', error: `timed out after ${opt['timeout-ms']} ms` });
    process.exit(1);
  }, opt['timeout-ms']);
  try {
    await cp.run();
  } catch (err) {
    failure = err instanceof Failure ? err.message : `${err.stack ?? err}`;
  }
  await cp.client.close({ code: 1000, reason: 'interop run done' }).catch(() => {});
  clearTimeout(watchdog);
  const errors = [...(failure ? [failure] : []), ...cp.problems];
  if (errors.length || cp.violations.length) {
    print({ result: 'error', error: errors.join('; ') || 'schema violation', violations: cp.violations });
    return 1;
  }
  print({ result: 'ok' });
  return 0;
}

process.exitCode = await main();
