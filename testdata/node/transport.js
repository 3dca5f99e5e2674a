'use strict';
// A device on the official Node device SDK over either of its MQTT transports, with a SAS key or
// an X.509 certificate, driven by pkg/fakehub/interop_node_test.go
// (through internal/nodetest):
//
//   HUBKIT_DEVICE_CS       the connection string (SharedAccessKey=... or x509=true)
//   HUBKIT_TRANSPORT       mqtt (Mqtt: mqtts://{HostName}) or mqttws (MqttWs: wss://{HostName}:443/$iothub/websocket)
//   HUBKIT_DEVICE_CERT, HUBKIT_DEVICE_KEY   PEM files of the device certificate and key (x509=true)
//   HUBKIT_PROXY           optional: http://HOST:PORT of an HTTP CONNECT proxy for mqttws
//                          (https-proxy-agent as the SDK's webSocketAgent, as Microsoft's docs show)
//
// Events on stdout: connected, sent, twin {version}, method {name, payload} (a direct method
// "reboot", answered 200), c2d {body} (completed, then the client closes and the script exits 0).
const fs = require('fs');
const { Client, Message } = require('azure-iot-device');
const { Mqtt, MqttWs } = require('azure-iot-device-mqtt');
const { HttpsProxyAgent } = require('https-proxy-agent');
const h = require('./lib/hubkit');

setTimeout(() => h.fail('no C2D message within 60 s'), 60000).unref();

async function main() {
  const transport = h.env('HUBKIT_TRANSPORT');
  if (transport !== 'mqtt' && transport !== 'mqttws') h.fail(`HUBKIT_TRANSPORT=${transport}, want mqtt or mqttws`);
  const client = Client.fromConnectionString(h.env('HUBKIT_DEVICE_CS'), transport === 'mqttws' ? MqttWs : Mqtt);
  const options = {}; // fakehub's CA: NODE_EXTRA_CA_CERTS
  if (process.env.HUBKIT_DEVICE_CERT) {
    options.cert = fs.readFileSync(process.env.HUBKIT_DEVICE_CERT, 'utf8');
    options.key = fs.readFileSync(h.env('HUBKIT_DEVICE_KEY'), 'utf8');
  }
  if (process.env.HUBKIT_PROXY) {
    options.mqtt = { webSocketAgent: new HttpsProxyAgent(process.env.HUBKIT_PROXY) };
  }
  client.on('error', (err) => h.fail('client error', err));
  client.on('message', (msg) => {
    h.emit('c2d', { body: msg.data.toString() });
    client.complete(msg, (err) => {
      if (err) h.fail('complete', err);
      client.close(() => process.exit(0));
    });
  });
  client.onDeviceMethod('reboot', (req, res) => {
    h.emit('method', { name: req.methodName, payload: req.payload });
    res.send(200, { rebooting: true }, (err) => err && h.fail('method response', err));
  });
  await client.setOptions(options);
  await client.open();
  h.emit('connected');
  await client.sendEvent(new Message(JSON.stringify({ node: transport })));
  h.emit('sent');
  const twin = await client.getTwin();
  await new Promise((resolve, reject) =>
    twin.properties.reported.update({ sdk: 'node' }, (err) => (err ? reject(err) : resolve())));
  h.emit('twin', { version: twin.properties.reported.$version });
}

main().catch((err) => h.fail('device flow', err));
