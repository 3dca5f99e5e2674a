package dashboard

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
)

// Options configures New.
type Options struct {
	// HostName is the hub's host name (a pasted connection string must name
	// it). Required.
	HostName string
	// Now is the clock for sessions (default time.Now).
	Now func() time.Time
	// Rand is the source of session IDs, CSRF and login tokens (default
	// crypto/rand).
	Rand io.Reader
	// Logger receives failures (nil: discarded).
	Logger *slog.Logger
	// Sections are pages other parts of the hub add (see Section).
	Sections []Section
	// Tick is the most often a live view is refreshed (default 250 ms).
	Tick time.Duration
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Handler serves the dashboard: GET / and everything under /ui/.
type Handler struct {
	b     Backend
	opts  Options
	log   *slog.Logger
	auth  *auth
	pages map[string]*template.Template
	frags *template.Template
	mux   *http.ServeMux
}

// New returns the dashboard over b.
func New(b Backend, opts Options) *Handler {
	if opts.HostName == "" {
		panic("dashboard: Options.HostName is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Tick <= 0 {
		opts.Tick = 250 * time.Millisecond
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{b: b, opts: opts, log: log, auth: &auth{rand: opts.Rand, now: opts.Now}, mux: http.NewServeMux()}
	ts := parsed()
	h.pages, h.frags = ts.pages, ts.frags
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticHandler(http.FileServerFS(static))))
	h.mux.HandleFunc("GET /ui/login", h.loginPage)
	h.mux.HandleFunc("POST /ui/login", h.login)
	h.mux.Handle("POST /ui/logout", h.form(h.logout))
	h.mux.Handle("GET /{$}", h.page(iothub.RegistryRead, h.home))
	h.mux.Handle("GET /ui/{$}", http.RedirectHandler("/", http.StatusSeeOther))
	h.mux.Handle("GET /ui/devices", h.page(iothub.RegistryRead, h.devices))
	h.mux.Handle("GET /ui/devices/{id}", h.page(iothub.RegistryRead, h.device))
	h.mux.Handle("POST /ui/devices/{id}/keys", h.form(h.revealKeys))
	h.mux.Handle("POST /ui/devices/{id}/twin", h.form(h.updateTwin))
	h.mux.Handle("POST /ui/devices/{id}/c2d", h.form(h.sendC2D))
	h.mux.Handle("POST /ui/devices/{id}/method", h.form(h.invoke))
	h.mux.Handle("GET /ui/telemetry", h.page(iothub.ServiceConnect, h.telemetry))
	h.mux.Handle("GET /ui/rejections", h.page(iothub.RegistryRead, h.rejections))
	h.mux.Handle("GET /ui/feedback", h.page(iothub.ServiceConnect, h.feedback))
	h.mux.Handle("GET /ui/hub", h.page(iothub.RegistryRead, h.hub))
	h.mux.Handle("POST /ui/hub/clock", h.form(h.moveClock))
	h.mux.Handle("POST /ui/hub/faults/clear", h.form(h.clearFaults))
	h.mux.Handle("POST /ui/hub/reset", h.form(h.reset))
	h.mux.Handle("GET /ui/dps", h.page(iothub.RegistryRead, h.dps))
	h.mux.Handle("GET /ui/grades", h.page(iothub.ServiceConnect, h.grades))
	h.mux.Handle("POST /ui/grades", h.form(h.startGrade))
	h.mux.Handle("GET /ui/grades/{id}", h.page(iothub.ServiceConnect, h.grade))
	h.mux.Handle("GET /ui/grades/{id}/{format}", h.page(iothub.ServiceConnect, h.gradeDownload))
	h.mux.Handle("POST /ui/grades/{id}/cancel", h.form(h.cancelGrade))
	h.mux.Handle("GET /ui/x/{section}", h.page(iothub.RegistryRead, h.section))
	h.mux.Handle("GET /ui/events/{view}", h.page(iothub.RegistryRead, h.events))
	h.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no dashboard page "+r.URL.Path, http.StatusNotFound)
	})
	return h
}

// NewLoginToken mints a one-time login token: /ui/login?token=T logs a
// browser in (with every right) once.
func (h *Handler) NewLoginToken() (string, error) { return h.auth.newLoginToken() }

// LoggedIn reports whether the request comes from a logged-in browser.
func (h *Handler) LoggedIn(r *http.Request) bool { return h.auth.lookup(r) != nil }

// LoginPath returns the path and query of a one-time login URL for token.
func LoginPath(token string) string { return "/ui/login?token=" + url.QueryEscape(token) }

// ServeHTTP serves the dashboard with its security headers; cross-origin
// state-changing requests are refused (http.CrossOriginProtection) on top of
// the CSRF token every form carries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer") // the login token never leaves in a Referer
	hd.Set("X-Frame-Options", "DENY")
	if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
		hd.Set("Cache-Control", "no-store")
	}
	if err := crossOrigin.Check(r); err != nil {
		http.Error(w, "cross-origin request refused: "+err.Error(), http.StatusForbidden)
		return
	}
	h.mux.ServeHTTP(w, r)
}

var crossOrigin = http.NewCrossOriginProtection()

func staticHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		next.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title    string
	Nav      string // the active navigation entry
	Session  *uiSession
	CSRF     string
	Events   string // the SSE URL of the page's live updates ("" none)
	Sections []Section
	HasDPS   bool // the navigation links to /ui/dps
	Flash    string
	Error    string
	Data     any
}

type pageFunc func(w http.ResponseWriter, r *http.Request, s *uiSession)

// page requires a logged-in session holding need; without one a browser
// is sent to the login page.
func (h *Handler) page(need iothub.Rights, f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := h.auth.lookup(r)
		if s == nil {
			if strings.HasPrefix(r.URL.Path, "/ui/events/") {
				http.Error(w, "log in first", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !s.may(need) {
			h.render(w, r, http.StatusForbidden, "error", view{Title: "Not allowed", Session: s, CSRF: s.csrf,
				Error: "policy " + s.policy + " has " + s.rights.String() + "; this page needs " + need.String() + "."})
			return
		}
		f(w, r, s)
	})
}

// form is page for a state-changing POST: it also checks the CSRF token.
func (h *Handler) form(f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := h.auth.lookup(r)
		if s == nil {
			http.Error(w, "log in first", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
			http.Error(w, "the form's CSRF token is missing or stale: reload the page and try again", http.StatusForbidden)
			return
		}
		f(w, r, s)
	})
}

// render executes a page template into a buffer first, so that a template
// error is a clean 500 and not half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	if v.Session != nil {
		v.CSRF = v.Session.csrf
	}
	v.Sections = h.opts.Sections
	v.HasDPS = h.b.HasDPS()
	t := h.pages[name]
	var buf bytes.Buffer
	if t == nil {
		h.log.Error("dashboard: no template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.Error("dashboard: rendering", "page", name, "path", r.URL.Path, "error", err)
		http.Error(w, "internal error rendering "+name, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fragment renders one named fragment template.
func (h *Handler) fragment(name string, data any) (string, error) {
	var buf bytes.Buffer
	err := h.frags.ExecuteTemplate(&buf, name, data)
	return buf.String(), err
}

// templates are parsed once per process: every page is the layout plus
// its own file, and fragments render alone for the live updates.
type templates struct {
	pages map[string]*template.Template
	frags *template.Template
}

var parsed = sync.OnceValue(func() templates {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html", "templates/fragments_hub.html", "templates/fragments_grade.html"))
	ts := templates{frags: base, pages: map[string]*template.Template{}}
	for _, p := range []string{"home", "login", "devices", "device", "telemetry", "rejections", "feedback", "section", "error", "hub", "reset", "dps", "grades", "grade"} {
		ts.pages[p] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+p+".html"))
	}
	return ts
})
