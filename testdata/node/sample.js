'use strict';
// The official Node device SDK (azure-iot-device + azure-iot-device-mqtt) written the way the
// SDK's own samples are (device/samples/javascript/simple_sample_device.js and
// simple_sample_device_twin.js in Azure/azure-iot-sdk-node), for `fakehub grade` and
// pkg/grade's tests (README "Grading your own device"). Nothing here helps the grader: the
// device reconnects, retries and renews its token only as the SDK does.
//
//   HUBKIT_DEVICE_CS      the device's connection string (GatewayHostName=localhost:PORT dials
//                         fakehub; NODE_EXTRA_CA_CERTS names fakehub's CA)
//   HUBKIT_TOKEN_TTL      optional: the SDK's tokenRenewal option, tokenValidTimeInSeconds
//   HUBKIT_TOKEN_MARGIN   optional: tokenRenewalMarginInSeconds (default 1/3 of the TTL)
//   HUBKIT_SEND_MS        optional: the telemetry interval (default 2000, the sample's)
//
// It answers the direct method "echo", completes every C2D message, reports the desired
// properties it receives, and sends telemetry every HUBKIT_SEND_MS while connected. Events
// on stdout (one JSON line each): connected, sent, c2d, twin, desired, method, disconnect,
// error. It runs until killed, or until stdin closes when HUBKIT_STDIN_EXIT=1 (the tests).
const { Client, Message } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const h = require('./lib/hubkit');

const cs = h.env('HUBKIT_DEVICE_CS');
const ttl = Number(process.env.HUBKIT_TOKEN_TTL || 0);
const margin = Number(process.env.HUBKIT_TOKEN_MARGIN || Math.floor(ttl / 3));
const sendMs = Number(process.env.HUBKIT_SEND_MS || 2000);

const client = Client.fromConnectionString(cs, Mqtt);
let sendInterval = null;
let seq = 0;
let twin = null;

function sendMessage() {
  seq++;
  const m = new Message(JSON.stringify({ temperature: 20 + (seq % 10), seq }));
  m.messageId = `sample-${seq}`;
  m.contentType = 'application/json';
  m.contentEncoding = 'utf-8';
  client.sendEvent(m, (err) => (err ? h.emit('error', { message: `send: ${err}` }) : h.emit('sent', { messageId: m.messageId })));
}

// As simple_sample_device.js: start sending on 'connect', stop on 'disconnect' and open again.
function connectHandler() {
  h.emit('connected');
  if (!sendInterval) {
    sendMessage();
    sendInterval = setInterval(sendMessage, sendMs);
  }
  // As simple_sample_device_twin.js: get the twin, follow desired updates, report.
  client.getTwin((err, t) => {
    if (err) {
      h.emit('error', { message: `getTwin: ${err}` });
      return;
    }
    h.emit('twin', { desired: JSON.parse(JSON.stringify(t.properties.desired)) });
    if (twin !== t) {
      twin = t;
      twin.on('properties.desired', (patch) => {
        h.emit('desired', { patch });
        twin.properties.reported.update({ lastDesired: patch.$version }, (e) => e && h.emit('error', { message: `report: ${e}` }));
      });
    }
    t.properties.reported.update({ sdk: 'azure-iot-device', sample: 'hubkit' }, (e) => e && h.emit('error', { message: `report: ${e}` }));
  });
}

function disconnectHandler(e) {
  h.emit('disconnect', { message: e ? String(e) : '' });
  clearInterval(sendInterval);
  sendInterval = null;
  client.open().catch((err) => h.emit('error', { message: `open: ${err.message}` }));
}

client.on('connect', connectHandler);
client.on('disconnect', disconnectHandler);
client.on('error', (e) => h.emit('error', { message: String(e) }));
client.on('message', (msg) => {
  h.emit('c2d', { messageId: msg.messageId, body: msg.data.toString() });
  client.complete(msg, (err) => err && h.emit('error', { message: `complete: ${err}` }));
});
client.onDeviceMethod('echo', (req, res) => {
  h.emit('method', { payload: req.payload });
  res.send(200, { echo: req.payload }, (err) => err && h.emit('error', { message: `method response: ${err}` }));
});

async function main() {
  if (ttl) {
    // The SDK's token renewal: a token valid ttl s, renewed margin s before it expires.
    await client.setOptions({ tokenRenewal: { tokenValidTimeInSeconds: ttl, tokenRenewalMarginInSeconds: margin } });
  }
  await client.open();
  if (process.env.HUBKIT_STDIN_EXIT === '1') {
    h.commands(() => {}, () => process.exit(0));
  }
}

main().catch((e) => h.fail('opening the client', e));
