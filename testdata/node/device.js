'use strict';
// A device (or module, when the connection string has ModuleId) on the official Node device SDK
// over MQTT (azure-iot-device + azure-iot-device-mqtt), driven by a hubkit test:
//
//   HUBKIT_DEVICE_CS      the connection string; GatewayHostName=localhost:PORT dials fakehub
//   HUBKIT_TOKEN_TTL      optional: token lifetime in seconds, renewed HUBKIT_TOKEN_MARGIN s early
//
// Events on stdout: connected, sent, twin {desired, reported}, reported, ready, then c2d {...},
// desired {patch}, method {payload}, token-renewed, disconnect, error {message}, closed.
// Commands on stdin: {"cmd":"send","body":"...","messageId":"..."}. Closing stdin ends it.
const { Client, ModuleClient, Message, SharedAccessKeyAuthenticationProvider } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const h = require('./lib/hubkit');

function plain(section) {
  return JSON.parse(JSON.stringify(section)); // the SDK's twin sections carry methods
}

async function main() {
  const cs = h.env('HUBKIT_DEVICE_CS');
  const isModule = /(^|;)ModuleId=/.test(cs);
  const Ctor = isModule ? ModuleClient : Client;
  let client;
  const ttl = Number(process.env.HUBKIT_TOKEN_TTL || 0);
  if (ttl) {
    const auth = SharedAccessKeyAuthenticationProvider.fromConnectionString(cs, ttl, Number(process.env.HUBKIT_TOKEN_MARGIN || 1));
    auth.on('newTokenAvailable', () => h.emit('token-renewed'));
    client = Ctor.fromAuthenticationProvider(auth, Mqtt);
  } else {
    client = Ctor.fromConnectionString(cs, Mqtt);
  }
  client.on('error', (e) => h.emit('error', { message: String(e) }));
  client.on('disconnect', (e) => h.emit('disconnect', { message: e ? String(e) : '' }));
  if (!isModule) {
    client.on('message', (msg) => {
      h.emit('c2d', {
        body: msg.data.toString(),
        messageId: msg.messageId,
        properties: Object.fromEntries(msg.properties.propertyList.map((p) => [p.key, p.value])),
      });
      client.complete(msg, (err) => err && h.emit('error', { message: `complete: ${err}` }));
    });
  }
  const onMethod = isModule ? client.onMethod.bind(client) : client.onDeviceMethod.bind(client);
  onMethod('echo', (req, res) => {
    h.emit('method', { name: req.methodName, payload: req.payload });
    res.send(200, { echo: req.payload }, (err) => err && h.emit('error', { message: `method response: ${err}` }));
  });

  await client.open();
  h.emit('connected');

  const m = new Message(JSON.stringify({ temperature: 21.5 }));
  m.messageId = 'node-1';
  m.contentType = 'application/json';
  m.contentEncoding = 'utf-8';
  m.properties.add('source', 'node');
  await client.sendEvent(m);
  h.emit('sent', { messageId: m.messageId });

  const twin = await client.getTwin();
  h.emit('twin', { desired: plain(twin.properties.desired), reported: plain(twin.properties.reported) });
  twin.on('properties.desired', (patch) => h.emit('desired', { patch }));
  await new Promise((resolve, reject) =>
    twin.properties.reported.update({ firmware: 'node-1.0', sdk: 'azure-iot-device' }, (err) => (err ? reject(err) : resolve())));
  h.emit('reported');
  h.emit('ready');

  h.commands(async (cmd) => {
    if (cmd.cmd === 'send') {
      const msg = new Message(cmd.body);
      msg.messageId = cmd.messageId;
      await client.sendEvent(msg);
      h.emit('sent', { messageId: msg.messageId });
      return;
    }
    h.fail(`unknown command ${JSON.stringify(cmd)}`);
  }, async () => {
    await client.close();
    h.emit('closed');
    process.exit(0);
  });
}

main().catch((e) => h.fail('device flow', e));
