'use strict';
// Registers one device with a DPS through the official Azure IoT Node provisioning SDK
// (azure-iot-provisioning-device with its MQTT or HTTP transport and
// azure-iot-security-symmetric-key), then connects to the assigned hub with the official
// device SDK (azure-iot-device + azure-iot-device-mqtt) and sends one message:
//
//   HUBKIT_DPS_HOST         host:port of the DPS endpoint for the chosen transport
//   HUBKIT_ID_SCOPE         the DPS's ID scope
//   HUBKIT_REGISTRATION_ID  the registration ID
//   HUBKIT_TRANSPORT        mqtt or http
//   HUBKIT_DEVICE_KEY       an individual enrollment's key, or
//   HUBKIT_GROUP_KEY        an enrollment group's key: the device key is derived here, the way
//                           Microsoft's Node sample does it
//   HUBKIT_PAYLOAD          optional: the provisioning payload (JSON)
//   HUBKIT_HUB_ADDR         optional: host:port to dial for the assigned hub, sent as
//                           GatewayHostName so that user name and token keep the assigned host
//
// Events on stdout: registered {assignedHub, deviceId, substatus, payload}, sent {messageId}.
const crypto = require('crypto');
const https = require('https');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt: ProvMqtt } = require('azure-iot-provisioning-device-mqtt');
const { Http: ProvHttp } = require('azure-iot-provisioning-device-http');
const { Http: HttpBase } = require('azure-iot-http-base');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');
const { Client, Message } = require('azure-iot-device');
const { Mqtt: DeviceMqtt } = require('azure-iot-device-mqtt');
const h = require('./lib/hubkit');

// computeDerivedSymmetricKey as in Microsoft's "provision devices using symmetric key
// enrollment groups" Node sample.
function computeDerivedSymmetricKey(masterKey, regId) {
  return crypto.createHmac('SHA256', Buffer.from(masterKey, 'base64'))
    .update(regId, 'utf8')
    .digest('base64');
}

function httpTransport(dpsHost) {
  // The HTTP transport dials port 443 of the host it is given; an https.Agent (the SDK's
  // http.agent option) sends it to fakehub's port instead.
  const port = Number(dpsHost.split(':')[1] || 443);
  const agent = new https.Agent();
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (options, cb) => create(Object.assign({}, options, { port }), cb);
  const base = new HttpBase();
  base.setOptions({ http: { agent } });
  return { transport: new ProvHttp(base), host: dpsHost.split(':')[0] };
}

async function main() {
  const dpsHost = h.env('HUBKIT_DPS_HOST');
  const idScope = h.env('HUBKIT_ID_SCOPE');
  const regId = h.env('HUBKIT_REGISTRATION_ID');
  const groupKey = process.env.HUBKIT_GROUP_KEY;
  const key = groupKey ? computeDerivedSymmetricKey(groupKey, regId) : h.env('HUBKIT_DEVICE_KEY');

  let transport;
  let host;
  if (h.env('HUBKIT_TRANSPORT') === 'http') {
    ({ transport, host } = httpTransport(dpsHost));
  } else {
    transport = new ProvMqtt();
    host = dpsHost; // mqtts://host:port
  }
  transport.setTransportOptions({ pollingInterval: 1000 });
  const client = ProvisioningDeviceClient.create(host, idScope, transport, new SymmetricKeySecurityClient(regId, key));
  if (process.env.HUBKIT_PAYLOAD) {
    client.setProvisioningPayload(JSON.parse(process.env.HUBKIT_PAYLOAD));
  }
  const result = await client.register();
  h.emit('registered', { assignedHub: result.assignedHub, deviceId: result.deviceId, substatus: result.substatus, payload: result.payload });

  let cs = `HostName=${result.assignedHub};DeviceId=${result.deviceId};SharedAccessKey=${key}`;
  if (process.env.HUBKIT_HUB_ADDR) {
    cs += `;GatewayHostName=${process.env.HUBKIT_HUB_ADDR}`;
  }
  const device = Client.fromConnectionString(cs, DeviceMqtt);
  await device.open();
  const msg = new Message(JSON.stringify({ provisioned: true }));
  msg.messageId = 'node-dps-1';
  await device.sendEvent(msg);
  h.emit('sent', { messageId: msg.messageId });
  await device.close();
  process.exit(0);
}

main().catch((e) => h.fail(`provisioning${e && e.result ? ` (result ${JSON.stringify(e.result)})` : ''}`, e));
