package restapi

import (
	"net/http"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// The device grader's routes (a hubkit extension, docs/iothub-behavior.md §15): POST
// /hubkit/grade starts a grade, GET /hubkit/grade lists the last reports, GET
// /hubkit/grade/{id} follows one, DELETE /hubkit/grade/{id} cancels it, GET
// /hubkit/grade/cases lists the cases. A backend without a grader answers 404.

// Grader is the optional part of a Backend that runs the device grader.
type Grader interface {
	GradeCases() []iothub.GradeCase
	StartGrade(req iothub.GradeRequest) (iothub.GradeReport, error)
	GradeReport(id string) (iothub.GradeReport, bool)
	GradeReports() []iothub.GradeReport
	CancelGrade(id string) bool
}

func (h *handler) grader(w http.ResponseWriter) (Grader, bool) {
	g, ok := h.b.(Grader)
	if !ok {
		h.writeError(w, iothub.Errorf(iothub.CodeGenericNotFound, "this hub has no device grader"))
	}
	return g, ok
}

func (h *handler) gradeCases(w http.ResponseWriter, _ *http.Request) {
	if g, ok := h.grader(w); ok {
		writeJSON(w, http.StatusOK, g.GradeCases())
	}
}

func (h *handler) startGrade(w http.ResponseWriter, r *http.Request) {
	g, ok := h.grader(w)
	if !ok {
		return
	}
	var in iothub.GradeRequest
	if err := readJSON(r, &in); err != nil {
		h.writeError(w, err)
		return
	}
	rep, err := g.StartGrade(in)
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.Header().Set("Location", "/hubkit/grade/"+rep.ID)
	writeJSON(w, http.StatusAccepted, rep)
}

func (h *handler) listGrades(w http.ResponseWriter, _ *http.Request) {
	if g, ok := h.grader(w); ok {
		writeJSON(w, http.StatusOK, g.GradeReports())
	}
}

func (h *handler) getGrade(w http.ResponseWriter, r *http.Request) {
	g, ok := h.grader(w)
	if !ok {
		return
	}
	rep, found := g.GradeReport(r.PathValue("id"))
	if !found {
		h.writeError(w, iothub.Errorf(iothub.CodeGenericNotFound, "no grade %q (GET /hubkit/grade lists the last ones)", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (h *handler) cancelGrade(w http.ResponseWriter, r *http.Request) {
	g, ok := h.grader(w)
	if !ok {
		return
	}
	if !g.CancelGrade(r.PathValue("id")) {
		h.writeError(w, iothub.Errorf(iothub.CodeGenericNotFound, "no grade %q", r.PathValue("id")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
