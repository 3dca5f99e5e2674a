package fakehub_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
)

// answerMethods makes d answer every direct method with status and its
// request payload wrapped in {"echo":...}.
func answerMethods(t *testing.T, d *device, status int) {
	t.Helper()
	tok := d.c.Subscribe(iothub.MethodsFilter, 0, func(c paho.Client, m paho.Message) {
		name, rid, err := iothub.ParseMethodRequestTopic(m.Topic())
		if err != nil || name == "" {
			return
		}
		body := `{"echo":` + string(m.Payload()) + `}`
		if len(m.Payload()) == 0 {
			body = ""
		}
		c.Publish(iothub.MethodResponseTopic(status, rid), 0, false, body)
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

func TestMethodRoundTrip(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	d := connectDevice(t, h, dev1, keyDev1A, true)
	answerMethods(t, d, 201)
	res, err := h.InvokeMethod(context.Background(), "dev1", "reboot", []byte(`{"delay":1}`), 0)
	if err != nil || res.Status != 201 || string(res.Payload) != `{"echo":{"delay":1}}` {
		t.Fatalf("InvokeMethod = %+v, %v", res, err)
	}
	res, err = h.InvokeMethod(context.Background(), "dev1", "ping", nil, time.Second)
	if err != nil || res.Status != 201 || string(res.Payload) != "null" {
		t.Errorf("empty answer = %+v %s, %v; want payload null", res, res.Payload, err)
	}

	dm := connectDevice(t, h, mod1, keyModA, true)
	answerMethods(t, dm, 200)
	if res, err := h.InvokeMethodOn(context.Background(), mod1, "m", []byte(`1`), 0); err != nil || res.Status != 200 {
		t.Errorf("module method = %+v, %v", res, err)
	}
}

func TestMethodErrors(t *testing.T) {
	h := startHub(t, fakehub.Options{})
	check := func(t *testing.T, err error, sentinel error, status int) {
		t.Helper()
		var se *iothub.Error
		if !errors.Is(err, sentinel) || !errors.As(err, &se) || se.Status() != status {
			t.Errorf("err = %v, want %v (status %d)", err, sentinel, status)
		}
	}
	t.Run("offline-404", func(t *testing.T) {
		_, err := h.InvokeMethod(context.Background(), "dev2", "m", nil, 0)
		check(t, err, iothub.ErrDeviceNotOnline, http.StatusNotFound)
	})
	t.Run("not-subscribed-404", func(t *testing.T) {
		connectDevice(t, h, dev2, keyDev2A, true)
		_, err := h.InvokeMethod(context.Background(), "dev2", "m", nil, 0)
		check(t, err, iothub.ErrDeviceNotOnline, http.StatusNotFound)
	})
	t.Run("no-answer-504", func(t *testing.T) {
		d := connectDevice(t, h, dev1, keyDev1A, true)
		d.subscribe(t, iothub.MethodsFilter, 0) // receives, never answers
		_, err := h.InvokeMethod(context.Background(), "dev1", "slow", nil, 100*time.Millisecond)
		check(t, err, iothub.ErrGatewayTimeout, http.StatusGatewayTimeout)
		if m := d.next(t); !strings.HasPrefix(m.Topic(), "$iothub/methods/POST/slow/?$rid=") || m.Qos() != 0 {
			t.Errorf("request %s QoS %d", m.Topic(), m.Qos())
		}
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := h.InvokeMethod(context.Background(), "dev1", "m", []byte("{not json"), 0)
		check(t, err, iothub.ErrInvalidArgument, http.StatusBadRequest)
		_, err = h.InvokeMethod(context.Background(), "dev1", "m", nil, 301*time.Second)
		check(t, err, iothub.ErrInvalidArgument, http.StatusBadRequest)
	})
	t.Run("unknown-device", func(t *testing.T) {
		_, err := h.InvokeMethod(context.Background(), "nobody", "m", nil, 0)
		check(t, err, iothub.ErrDeviceNotFound, http.StatusNotFound)
	})
}
