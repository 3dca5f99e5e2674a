package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// stateFile is the registry file in a --state folder.
const stateFile = "registry.json"

// loadState returns the registry file kept in dir, or ok=false when there is none yet.
func loadState(dir string) (f fakehub.RegistryFile, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if os.IsNotExist(err) {
		return fakehub.RegistryFile{}, false, nil
	}
	if err != nil {
		return fakehub.RegistryFile{}, false, err
	}
	f, err = fakehub.LoadRegistry(bytes.NewReader(b), nil)
	if err != nil {
		return fakehub.RegistryFile{}, false, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return f, true, nil
}

// saveState writes the registry (devices, modules, keys, policies) into dir, readable by its
// owner only, replacing the file atomically.
func saveState(dir, hostName string, reg *fakehub.Registry) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := fakehub.WriteRegistry(&buf, hostName, reg); err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

// banner is the machine-readable start banner (--banner-json FILE): what the text banner
// prints, as JSON. It holds connection strings (keys): the file is written 0600.
type banner struct {
	HostName                string         `json:"hostName"`
	MQTTAddr                string         `json:"mqttAddr,omitempty"`
	InsecureMQTTAddr        string         `json:"insecureMqttAddr,omitempty"`
	CAFile                  string         `json:"caFile,omitempty"`
	ServiceURL              string         `json:"serviceUrl,omitempty"`
	ServiceAddr             string         `json:"serviceAddr,omitempty"`
	HealthURL               string         `json:"healthUrl,omitempty"`
	ServiceConnectionString string         `json:"serviceConnectionString,omitempty"`
	WebSocketURL            string         `json:"webSocketUrl,omitempty"`
	DPS                     *bannerDPS     `json:"dps,omitempty"`
	Devices                 []bannerDevice `json:"devices"`
}

// bannerDPS is the DPS part of the banner (--dps).
type bannerDPS struct {
	IDScope                 string `json:"idScope"`
	MQTTAddr                string `json:"mqttAddr"`
	HTTPSAddr               string `json:"httpsAddr"`
	URL                     string `json:"url"`
	ServiceConnectionString string `json:"serviceConnectionString,omitempty"`
}

type bannerDevice struct {
	DeviceID         string `json:"deviceId"`
	ModuleID         string `json:"moduleId,omitempty"`
	ConnectionString string `json:"connectionString"`
}

func writeBannerJSON(path string, srv *fakehub.Server, reg *fakehub.Registry, caFile string) error {
	b := banner{HostName: srv.HostName(), InsecureMQTTAddr: srv.InsecureAddr(), CAFile: caFile, ServiceURL: srv.ServiceURL(),
		ServiceAddr: srv.ServiceAddr(), Devices: []bannerDevice{}}
	if caFile != "" {
		b.MQTTAddr = srv.Addr()
	}
	b.WebSocketURL = srv.WebSocketURL()
	if d := srv.DPS(); d != nil {
		b.DPS = &bannerDPS{IDScope: d.IDScope(), MQTTAddr: d.Addr(), HTTPSAddr: d.HTTPAddr(), URL: d.URL(), ServiceConnectionString: d.ServiceConnectionString()}
	}
	if b.ServiceURL != "" {
		b.HealthURL = b.ServiceURL + "/health"
		b.ServiceConnectionString = srv.ServiceConnectionString()
	}
	for _, d := range reg.Devices() {
		ids := []fakeIdentity{{d.DeviceID, "", d.Authentication.SymmetricKey.PrimaryKey}}
		ms, _ := reg.Modules(d.DeviceID)
		for _, m := range ms {
			ids = append(ids, fakeIdentity{m.DeviceID, m.ModuleID, m.Authentication.SymmetricKey.PrimaryKey})
		}
		for _, id := range ids {
			cs := sas.ConnectionString{HostName: srv.HostName(), DeviceID: id.device, ModuleID: id.module, SharedAccessKey: id.key}
			b.Devices = append(b.Devices, bannerDevice{DeviceID: id.device, ModuleID: id.module, ConnectionString: cs.String()})
		}
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("--banner-json: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil { // readers never see half a file
		return fmt.Errorf("--banner-json: %w", err)
	}
	return nil
}

type fakeIdentity struct{ device, module, key string }
