package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"strings"

	"github.com/hubkit/hubkit/internal/loadgen"
	"github.com/hubkit/hubkit/pkg/fakehub"
	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// keysFile is what devicesim load --keys read: the devices in a fixed order
// (the file's for connection strings, device-ID order for a devices file),
// the host name when the file names one, and the policy keys of a devices
// file.
type keysFile struct {
	hostName string
	keys     []loadgen.DeviceKey
	policies map[string][]byte
}

// readKeysFile reads device connection strings, one per line (blank lines
// and # comments skipped), or a devices file as fakehub --devices takes it
// (YAML or JSON, "az iot hub device-identity list" output included).
func readKeysFile(path string) (keysFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return keysFile{}, err
	}
	if first := firstLine(data); strings.HasPrefix(strings.ToLower(first), "hostname=") {
		return connectionStringLines(path, data)
	}
	// Devices without keys get random ones, which no hub knows: the file
	// is expected to hold the keys (fakehub prints generated ones).
	rf, err := fakehub.LoadRegistry(bytes.NewReader(data), rand.Reader)
	if err != nil {
		return keysFile{}, fmt.Errorf("%s: %w", path, err)
	}
	kf := keysFile{hostName: rf.HostName, policies: map[string][]byte{}}
	for _, d := range rf.Registry.Devices() {
		k, err := sas.DecodeKey(d.Authentication.SymmetricKey.PrimaryKey)
		if err != nil {
			return keysFile{}, fmt.Errorf("%s: device %s: %w", path, d.DeviceID, err)
		}
		kf.keys = append(kf.keys, loadgen.DeviceKey{Identity: iothub.Identity{DeviceID: d.DeviceID}, Key: k})
	}
	for _, p := range rf.Registry.Policies() {
		if k, err := sas.DecodeKey(p.PrimaryKey); err == nil {
			kf.policies[p.KeyName] = k
		}
	}
	return kf, nil
}

func connectionStringLines(path string, data []byte) (keysFile, error) {
	var kf keysFile
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cs, err := sas.ParseConnectionString(line)
		if err != nil {
			return keysFile{}, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		if cs.DeviceID == "" || cs.SharedAccessKey == "" {
			return keysFile{}, fmt.Errorf("%s:%d: want a device connection string with DeviceId and SharedAccessKey", path, n)
		}
		if kf.hostName == "" {
			kf.hostName = cs.HostName
		} else if !strings.EqualFold(kf.hostName, cs.HostName) {
			return keysFile{}, fmt.Errorf("%s:%d: HostName %s, but earlier lines name %s (one hub per run)", path, n, cs.HostName, kf.hostName)
		}
		key, err := sas.DecodeKey(cs.SharedAccessKey)
		if err != nil {
			return keysFile{}, fmt.Errorf("%s:%d: SharedAccessKey: %w", path, n, err)
		}
		kf.keys = append(kf.keys, loadgen.DeviceKey{Identity: iothub.Identity{DeviceID: cs.DeviceID, ModuleID: cs.ModuleID}, Key: key})
	}
	return kf, sc.Err()
}

// firstLine is the first line that is neither blank nor a # comment.
func firstLine(data []byte) string {
	for line := range strings.SplitSeq(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return ""
}
