package serviceclient

import (
	"context"
	"net/http"

	"github.com/hubkit/hubkit/pkg/iothub"
)

func identityPath(deviceID, moduleID string) string {
	if moduleID == "" {
		return path("devices", deviceID)
	}
	return path("devices", deviceID, "modules", moduleID)
}

func (c *Client) list(ctx context.Context, p string) ([]iothub.Device, error) {
	var ds []iothub.Device
	err := c.call(ctx, request{method: http.MethodGet, path: p}, &ds)
	return ds, err
}

// Devices lists the device identities (GET /devices).
func (c *Client) Devices(ctx context.Context) ([]iothub.Device, error) {
	return c.list(ctx, "/devices")
}

// Modules lists a device's modules (GET /devices/{id}/modules).
func (c *Client) Modules(ctx context.Context, deviceID string) ([]iothub.Device, error) {
	return c.list(ctx, path("devices", deviceID, "modules"))
}

// Device returns a device identity (GET /devices/{id}).
func (c *Client) Device(ctx context.Context, deviceID string) (iothub.Device, error) {
	return c.identity(ctx, deviceID, "")
}

// Module returns a module identity (GET /devices/{id}/modules/{mid}).
func (c *Client) Module(ctx context.Context, deviceID, moduleID string) (iothub.Device, error) {
	return c.identity(ctx, deviceID, moduleID)
}

func (c *Client) identity(ctx context.Context, deviceID, moduleID string) (iothub.Device, error) {
	var d iothub.Device
	err := c.call(ctx, request{method: http.MethodGet, path: identityPath(deviceID, moduleID)}, &d)
	return d, err
}

// CreateDevice creates d (d.ModuleID set: a module of d.DeviceID). Empty keys are generated
// by the hub; an empty status means enabled. It fails with iothub.ErrDeviceAlreadyExists
// (iothub.ErrModuleAlreadyExists) if the identity exists.
func (c *Client) CreateDevice(ctx context.Context, d iothub.Device) (iothub.Device, error) {
	return c.put(ctx, d, "")
}

// UpdateDevice replaces the identity d names. ifMatch is "*" (any version, the default) or
// the etag the caller read (iothub.ErrPreconditionFailed if it changed since). Empty keys
// keep the stored ones.
func (c *Client) UpdateDevice(ctx context.Context, d iothub.Device, ifMatch string) (iothub.Device, error) {
	if ifMatch == "" {
		ifMatch = "*"
	}
	return c.put(ctx, d, ifMatch)
}

func (c *Client) put(ctx context.Context, d iothub.Device, ifMatch string) (iothub.Device, error) {
	r, err := jsonRequest(http.MethodPut, identityPath(d.DeviceID, d.ModuleID), d)
	if err != nil {
		return iothub.Device{}, err
	}
	if ifMatch != "" {
		r.header.Set("If-Match", iothub.QuoteETag(ifMatch))
	}
	var stored iothub.Device
	err = c.call(ctx, r, &stored)
	return stored, err
}

// DeleteDevice deletes a device and its modules (DELETE /devices/{id}).
func (c *Client) DeleteDevice(ctx context.Context, deviceID string) error {
	return c.delete(ctx, identityPath(deviceID, ""))
}

// DeleteModule deletes a module (DELETE /devices/{id}/modules/{mid}).
func (c *Client) DeleteModule(ctx context.Context, deviceID, moduleID string) error {
	return c.delete(ctx, identityPath(deviceID, moduleID))
}

func (c *Client) delete(ctx context.Context, p string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: p, header: http.Header{"If-Match": {"*"}}}, nil)
}

// SetDeviceStatus enables or disables a device, keeping everything else: it reads the
// device and writes it back with If-Match set to the etag it read.
func (c *Client) SetDeviceStatus(ctx context.Context, deviceID string, status iothub.DeviceStatus, reason string) (iothub.Device, error) {
	d, err := c.Device(ctx, deviceID)
	if err != nil {
		return iothub.Device{}, err
	}
	d.Status, d.StatusReason = status, reason
	return c.put(ctx, d, d.ETag)
}
