#!/usr/bin/python3
"""The classic Azure IoT Hub MQTT sample flow, on Eclipse Paho for Python
(Debian's python3-paho-mqtt, v1 callback API): a SAS token computed the way
Microsoft's documentation computes it, TLS with a CA file, subscribe to
cloud-to-device messages, publish one telemetry message with properties, and
(with EXPECT_C2D=1) wait for one C2D message.

Configuration comes from the environment: HUB_HOSTNAME, HUB_ADDR, HUB_PORT,
CA_FILE, DEVICE_ID, DEVICE_KEY, EXPECT_C2D, TIMEOUT.
Prints CONNACK/SUBACK/PUBACK/READY/C2D lines. Exit status: 0 done, 3 time-out,
4 connection lost, otherwise the CONNACK return code.
"""
import base64
import hashlib
import hmac
import os
import ssl
import sys
import threading
import time
import urllib.parse

import paho.mqtt.client as mqtt


def generate_sas_token(uri, key, policy_name=None, expiry=3600):
    # As in learn.microsoft.com/azure/iot-hub/authenticate-authorize-sas (Python).
    ttl = time.time() + expiry
    sign_key = "%s\n%d" % ((urllib.parse.quote_plus(uri)), int(ttl))
    signature = base64.b64encode(
        hmac.HMAC(base64.b64decode(key), sign_key.encode("utf-8"), hashlib.sha256).digest())
    rawtoken = {"sr": uri, "sig": signature, "se": str(int(ttl))}
    if policy_name is not None:
        rawtoken["skn"] = policy_name
    return "SharedAccessSignature " + urllib.parse.urlencode(rawtoken)


hostname = os.environ["HUB_HOSTNAME"]
device_id = os.environ["DEVICE_ID"]
expect_c2d = os.environ.get("EXPECT_C2D") == "1"
timeout = float(os.environ.get("TIMEOUT", "20"))
done = threading.Event()
result = {"code": 3}


def say(*words):
    print(*words, flush=True)


def on_connect(client, userdata, flags, rc):
    say("CONNACK", rc)
    if rc != 0:
        result["code"] = rc
        done.set()
        return
    client.subscribe("devices/%s/messages/devicebound/#" % device_id, qos=1)


def on_subscribe(client, userdata, mid, granted_qos):
    say("SUBACK", ",".join(str(q) for q in granted_qos))
    topic = ("devices/%s/messages/events/"
             "%%24.mid=py-1&%%24.ct=application%%2Fjson&%%24.ce=utf-8&source=paho-python" % device_id)
    client.publish(topic, '{"temperature": 21.5}', qos=1)


def on_publish(client, userdata, mid):
    say("PUBACK", mid)
    if expect_c2d:
        say("READY")
    else:
        result["code"] = 0
        done.set()


def on_message(client, userdata, msg):
    say("C2D", msg.topic, msg.payload.decode("utf-8"))
    result["code"] = 0
    done.set()


def on_disconnect(client, userdata, rc):
    if not done.is_set():
        say("DISCONNECTED", rc)
        result["code"] = 4
        done.set()


if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x: ask for the v1 callbacks used here
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=device_id, clean_session=False, protocol=mqtt.MQTTv311)
else:
    client = mqtt.Client(client_id=device_id, clean_session=False, protocol=mqtt.MQTTv311)
client.username_pw_set(
    username="%s/%s/?api-version=2021-04-12" % (hostname, device_id),
    password=generate_sas_token("%s/devices/%s" % (hostname, device_id), os.environ["DEVICE_KEY"]))
client.tls_set(ca_certs=os.environ["CA_FILE"], cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLSv1_2)
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_publish = on_publish
client.on_message = on_message
client.on_disconnect = on_disconnect
client.connect(os.environ["HUB_ADDR"], int(os.environ["HUB_PORT"]), keepalive=60)
client.loop_start()
if not done.wait(timeout):
    say("TIMEOUT")
client.on_disconnect = None
client.disconnect()
client.loop_stop()
sys.exit(result["code"])
