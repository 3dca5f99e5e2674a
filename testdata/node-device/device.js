// hubkit interop client: the official Azure IoT Node device SDK (azure-iot-device with the
// azure-iot-device-mqtt transports) against fakehub. Driven by pkg/fakehub's
// interop_node_test.go through the environment:
//
//   HUB_CS         device connection string (SharedAccessKey=... or x509=true)
//   HUB_TRANSPORT  mqtt (MQTT over TLS, mqtts://HostName) or mqttws (wss://HostName:443/$iothub/websocket)
//   HUB_CA         PEM file of the CA that signed fakehub's server certificate
//   HUB_CERT, HUB_KEY  PEM files of the device certificate and key (x509=true)
//   HUB_PROXY      http://HOST:PORT of an HTTP CONNECT proxy for mqttws (https-proxy-agent as webSocketAgent)
//
// It prints one JSON object per line on stdout: {"connected":true}, {"sent":true},
// {"twin":N} (the reported version), {"method":...} when a direct method "reboot" is
// called (answered 200), {"c2d":"..."} when a C2D message arrives (then it completes it and
// exits 0). Errors go to stderr with exit code 1; it gives up after 60 s.
'use strict';

const fs = require('fs');
const { Client, Message } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { HttpsProxyAgent } = require('https-proxy-agent');

const env = process.env;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const fail = (what, err) => {
  process.stderr.write(`${what}: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
};
setTimeout(() => fail('timeout', 'no C2D message within 60 s'), 60000).unref();

async function main() {
  const transport = env.HUB_TRANSPORT === 'mqttws' ? MqttWs : Mqtt;
  const client = Client.fromConnectionString(env.HUB_CS, transport);
  const options = { ca: fs.readFileSync(env.HUB_CA, 'utf8') };
  if (env.HUB_CERT) {
    options.cert = fs.readFileSync(env.HUB_CERT, 'utf8');
    options.key = fs.readFileSync(env.HUB_KEY, 'utf8');
  }
  if (env.HUB_PROXY) {
    options.mqtt = { webSocketAgent: new HttpsProxyAgent(env.HUB_PROXY) };
  }
  client.on('error', (err) => fail('client error', err));
  client.on('message', (msg) => {
    out({ c2d: msg.data.toString() });
    client.complete(msg, (err) => {
      if (err) fail('complete', err);
      client.close(() => process.exit(0));
    });
  });
  client.onDeviceMethod('reboot', (req, res) => {
    out({ method: req.methodName, payload: req.payload });
    res.send(200, { rebooting: true }, (err) => { if (err) fail('method response', err); });
  });
  await client.setOptions(options);
  await client.open();
  out({ connected: true });
  await client.sendEvent(new Message(JSON.stringify({ node: env.HUB_TRANSPORT })));
  out({ sent: true });
  const twin = await client.getTwin();
  await new Promise((resolve, reject) => twin.properties.reported.update({ sdk: 'node' }, (err) => (err ? reject(err) : resolve())));
  out({ twin: twin.properties.reported.$version });
}

main().catch((err) => fail('device', err));
