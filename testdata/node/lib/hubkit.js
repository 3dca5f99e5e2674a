'use strict';
// What every interop script shares (see README "Interop tests with the official SDKs"):
// configuration from HUBKIT_* environment variables, one JSON event per stdout line for the Go
// test to read (internal/nodetest), commands from the Go test as JSON lines on stdin, and a
// failure that names what went wrong (exit 1, the reason on stderr).
//
// fakehub's CA: the Go side sets NODE_EXTRA_CA_CERTS, which Node's TLS (https and mqtt.js)
// trusts next to the system roots. The service port: azure-iothub takes no port in its
// connection string (it always dials 443) and builds its own https.Agent, so servicePort()
// makes every https.Agent created afterwards default to fakehub's port.

const https = require('https');
const readline = require('readline');

function env(name) {
  const v = process.env[name];
  if (!v) fail(`${name} is not set`);
  return v;
}

function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields || {})) + '\n');
}

function fail(what, err) {
  const detail = err ? `: ${err.stack || err}` : '';
  process.stderr.write(`node: ${what}${detail}\n`);
  process.exit(1);
}

function check(cond, what, got) {
  if (!cond) fail(`check failed: ${what}${got === undefined ? '' : ` (got ${JSON.stringify(got)})`}`);
}

// servicePort points every https.Agent made from now on (azure-iothub makes its own) and the
// global agent at port, for hosts given without one.
function servicePort(port) {
  const n = Number(port);
  if (!n) fail(`bad service port ${JSON.stringify(port)}`);
  const Base = https.Agent;
  https.Agent = class extends Base {
    constructor(options) {
      super(options);
      this.defaultPort = n;
    }
  };
  https.globalAgent.defaultPort = n;
}

// commands calls handle for each JSON line on stdin, and done when stdin closes (the Go test
// closes it to end the script).
function commands(handle, done) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      fail(`bad command ${JSON.stringify(line)}`, e);
    }
    Promise.resolve(handle(cmd)).catch((e) => fail(`command ${cmd.cmd}`, e));
  });
  rl.on('close', () => Promise.resolve(done()).catch((e) => fail('closing', e)));
}

// expectError runs fn, which must fail; it returns the error.
async function expectError(what, fn) {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  fail(`${what}: succeeded, want an error`);
}

process.on('unhandledRejection', (e) => fail('unhandled rejection', e));

module.exports = { env, emit, fail, check, servicePort, commands, expectError };
