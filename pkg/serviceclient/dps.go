package serviceclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/hubkit/hubkit/pkg/iothub/dps"
	"github.com/hubkit/hubkit/pkg/sas"
)

// DPSDefaultPort is fakehub's DPS HTTPS port (fakehub --dps-http default).
const DPSDefaultPort = 8444

// DPSClient calls the service API of a Device Provisioning Service (fakehub's, or a real one
// at https://{dps}.azure-devices-provisioning.net): individual enrollments, enrollment
// groups and registration records, in package dps's vocabulary. Errors are *dps.Error.
type DPSClient struct{ c *Client }

// NewDPS returns a client for the DPS named by a service connection string
// ("HostName=...;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=..."). The
// default URL is https://{HostName}:8444 (WithURL to change it; a real DPS is on 443).
func NewDPS(connectionString string, opts ...Option) (*DPSClient, error) {
	cs, err := sas.ParseConnectionString(connectionString)
	if err != nil {
		return nil, err
	}
	opts = append([]Option{WithURL(fmt.Sprintf("https://%s:%d", cs.HostName, DPSDefaultPort))}, opts...)
	c, err := New(connectionString, opts...)
	if err != nil {
		return nil, err
	}
	return &DPSClient{c: c}, nil
}

// URL returns the service API's base URL.
func (d *DPSClient) URL() string { return d.c.URL() }

// Close closes idle connections.
func (d *DPSClient) Close() error { return d.c.Close() }

func (d *DPSClient) call(ctx context.Context, method, p, ifMatch string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.c.base.String()+p+"?api-version="+url.QueryEscape(dps.ServiceAPIVersion), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	tok, err := d.c.cs.Token(d.c.now().Add(d.c.ttl))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", tok.String())
	resp, err := d.c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, p, err)
	}
	if resp.StatusCode >= 300 {
		return dps.ReadError(resp.StatusCode, resp.Header, b)
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, p, err)
	}
	return nil
}

// query is the body of the service API's query routes: fakehub answers every query with
// the whole collection.
var query = map[string]string{"query": "SELECT * FROM enrollments"}

// Enrollment gets an individual enrollment.
func (d *DPSClient) Enrollment(ctx context.Context, registrationID string) (dps.Enrollment, error) {
	var en dps.Enrollment
	return en, d.call(ctx, http.MethodGet, path("enrollments", registrationID), "", nil, &en)
}

// PutEnrollment creates an individual enrollment (ifMatch ""), or updates one (ifMatch its
// etag, or "*").
func (d *DPSClient) PutEnrollment(ctx context.Context, en dps.Enrollment, ifMatch string) (dps.Enrollment, error) {
	var out dps.Enrollment
	return out, d.call(ctx, http.MethodPut, path("enrollments", en.RegistrationID), ifMatch, en, &out)
}

// DeleteEnrollment deletes an individual enrollment (and its registration record).
func (d *DPSClient) DeleteEnrollment(ctx context.Context, registrationID, ifMatch string) error {
	return d.call(ctx, http.MethodDelete, path("enrollments", registrationID), ifMatch, nil, nil)
}

// Enrollments lists the individual enrollments (POST /enrollments/query).
func (d *DPSClient) Enrollments(ctx context.Context) ([]dps.Enrollment, error) {
	var out []dps.Enrollment
	return out, d.call(ctx, http.MethodPost, "/enrollments/query", "", query, &out)
}

// Group gets an enrollment group.
func (d *DPSClient) Group(ctx context.Context, id string) (dps.EnrollmentGroup, error) {
	var g dps.EnrollmentGroup
	return g, d.call(ctx, http.MethodGet, path("enrollmentGroups", id), "", nil, &g)
}

// PutGroup creates or updates an enrollment group (ifMatch as for PutEnrollment).
func (d *DPSClient) PutGroup(ctx context.Context, g dps.EnrollmentGroup, ifMatch string) (dps.EnrollmentGroup, error) {
	var out dps.EnrollmentGroup
	return out, d.call(ctx, http.MethodPut, path("enrollmentGroups", g.EnrollmentGroupID), ifMatch, g, &out)
}

// DeleteGroup deletes an enrollment group.
func (d *DPSClient) DeleteGroup(ctx context.Context, id, ifMatch string) error {
	return d.call(ctx, http.MethodDelete, path("enrollmentGroups", id), ifMatch, nil, nil)
}

// Groups lists the enrollment groups (POST /enrollmentGroups/query).
func (d *DPSClient) Groups(ctx context.Context) ([]dps.EnrollmentGroup, error) {
	var out []dps.EnrollmentGroup
	return out, d.call(ctx, http.MethodPost, "/enrollmentGroups/query", "", query, &out)
}

// Registration gets a device's registration record.
func (d *DPSClient) Registration(ctx context.Context, registrationID string) (dps.RegistrationState, error) {
	var st dps.RegistrationState
	return st, d.call(ctx, http.MethodGet, path("registrations", registrationID), "", nil, &st)
}

// DeleteRegistration deletes a registration record (the next registration is an initial
// assignment).
func (d *DPSClient) DeleteRegistration(ctx context.Context, registrationID, ifMatch string) error {
	return d.call(ctx, http.MethodDelete, path("registrations", registrationID), ifMatch, nil, nil)
}

// GroupRegistrations lists the registration records of an enrollment group (POST
// /registrations/{groupId}/query).
func (d *DPSClient) GroupRegistrations(ctx context.Context, groupID string) ([]dps.RegistrationState, error) {
	var out []dps.RegistrationState
	return out, d.call(ctx, http.MethodPost, path("registrations", groupID)+"/query", "", query, &out)
}
