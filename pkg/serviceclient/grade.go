package serviceclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// The device grader of a hubkit hub (a hubkit extension, docs/iothub-behavior.md §15).

// GradeCases lists the grader's cases (GET /hubkit/grade/cases).
func (c *Client) GradeCases(ctx context.Context) ([]iothub.GradeCase, error) {
	var out []iothub.GradeCase
	err := c.call(ctx, request{method: http.MethodGet, path: "/hubkit/grade/cases", hubkit: true}, &out)
	return out, err
}

// StartGrade starts grading a device that is (or will be) connected (POST /hubkit/grade);
// the report it returns is running: follow it with GradeReport.
func (c *Client) StartGrade(ctx context.Context, req iothub.GradeRequest) (iothub.GradeReport, error) {
	r, err := jsonRequest(http.MethodPost, "/hubkit/grade", req)
	if err != nil {
		return iothub.GradeReport{}, err
	}
	r.hubkit = true
	var out iothub.GradeReport
	err = c.call(ctx, r, &out)
	return out, err
}

// GradeReport reads a grade's progress or report (GET /hubkit/grade/{id}).
func (c *Client) GradeReport(ctx context.Context, id string) (iothub.GradeReport, error) {
	var out iothub.GradeReport
	err := c.call(ctx, request{method: http.MethodGet, path: "/hubkit/grade/" + url.PathEscape(id), hubkit: true}, &out)
	return out, err
}

// CancelGrade stops a running grade (DELETE /hubkit/grade/{id}).
func (c *Client) CancelGrade(ctx context.Context, id string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/hubkit/grade/" + url.PathEscape(id), hubkit: true}, nil)
}
