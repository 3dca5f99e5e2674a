package restapi

import (
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hubkit/hubkit/pkg/iothub"
	"github.com/hubkit/hubkit/pkg/sas"
)

// Options configures NewHandler.
type Options struct {
	// HostName is the hub host name; tokens must be signed for it (their sr
	// must cover "{HostName}/{path}", so sr={HostName} covers everything).
	// Required.
	HostName string
	// Now is the clock for token expiry and timestamps (default time.Now).
	Now func() time.Time
	// Rand is the source of generated keys, message IDs and tracking IDs
	// (default crypto/rand.Reader).
	Rand io.Reader
	// Skew is the clock-skew allowance for token expiry (default
	// sas.DefaultSkew; negative means none).
	Skew time.Duration
	// TokenNow is the clock the Authorization tokens' expiry is checked against (default
	// Now): fakehub passes the real clock, so that moving its test clock does not lock the
	// service API's own clients out.
	TokenNow func() time.Time
	// Logger receives refused requests (Info) and backend failures (Error).
	// nil discards.
	Logger *slog.Logger
}

type handler struct {
	b    Backend
	host string
	now  func() time.Time
	tnow func() time.Time // token expiry
	rand io.Reader
	skew time.Duration
	log  *slog.Logger
	mux  *http.ServeMux
}

// NewHandler returns the service API over b. It panics if opts.HostName is
// empty (a programming error in the wiring).
func NewHandler(b Backend, opts Options) http.Handler {
	if opts.HostName == "" {
		panic("restapi: Options.HostName is required")
	}
	h := &handler{b: b, host: opts.HostName, now: opts.Now, rand: opts.Rand, skew: opts.Skew, log: opts.Logger, mux: http.NewServeMux()}
	if h.now == nil {
		h.now = time.Now
	}
	h.tnow = opts.TokenNow
	if h.tnow == nil {
		h.tnow = h.now
	}
	if h.rand == nil {
		h.rand = rand.Reader
	}
	if h.skew == 0 {
		h.skew = sas.DefaultSkew
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for _, rt := range h.routes() {
		h.mux.Handle(rt.pattern, h.guard(rt))
	}
	// Method-less fallbacks so that a known path with a wrong method gets an
	// IoT Hub style 405 instead of the mux's plain-text one.
	seen := map[string]bool{}
	for _, rt := range h.routes() {
		_, path, _ := strings.Cut(rt.pattern, " ")
		// /devices/query shares its shape with /devices/{id}: other methods on it are
		// those of a device named "query", as on IoT Hub; /hubkit/grade/cases likewise
		// shares /hubkit/grade/{id}'s.
		if !seen[path] && path != "/devices/query" && path != "/hubkit/grade/cases" {
			seen[path] = true
			h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
				h.writeError(w, iothub.Errorf(iothub.CodeGenericMethodNotAllowed, "%s is not allowed on %s", r.Method, path))
			})
		}
	}
	// Readiness for scripts and CI: unauthenticated, no secrets (a hubkit extension).
	h.mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "hostName": h.host})
	})
	h.mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, iothub.Errorf(iothub.CodeGenericMethodNotAllowed, "%s is not allowed on /health (GET is)", r.Method))
	})
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, iothub.Errorf(iothub.CodeGenericNotFound, "no service API route for %s", r.URL.Path))
	})
	return h.mux
}

// route is one service API operation.
type route struct {
	pattern    string        // http.ServeMux pattern
	need       iothub.Rights // the policy permission it requires
	apiVersion bool          // IoT Hub route: api-version query parameter required
	serve      func(w http.ResponseWriter, r *http.Request)
}

// RouteInfo describes one operation: its http.ServeMux pattern and the
// policy rights it requires.
type RouteInfo struct {
	Pattern string
	Rights  iothub.Rights
}

// Routes lists the operations, for documentation and tests.
func Routes() []RouteInfo {
	var out []RouteInfo
	for _, rt := range (&handler{}).routes() {
		out = append(out, RouteInfo{rt.pattern, rt.need})
	}
	return out
}

func (h *handler) routes() []route {
	return []route{
		// Registry (IoT Hub service REST API).
		{"GET /devices", iothub.RegistryRead, true, h.listDevices},
		{"GET /devices/{$}", iothub.RegistryRead, true, h.listDevices}, // the Node service SDK's Registry.list
		{"POST /devices/query", iothub.RegistryRead, true, h.queryTwins},
		{"GET /devices/{id}", iothub.RegistryRead, true, h.getIdentity},
		{"PUT /devices/{id}", iothub.RegistryWrite, true, h.putIdentity},
		{"DELETE /devices/{id}", iothub.RegistryWrite, true, h.deleteIdentity},
		{"GET /devices/{id}/modules", iothub.RegistryRead, true, h.listModules},
		{"GET /devices/{id}/modules/{mid}", iothub.RegistryRead, true, h.getIdentity},
		{"PUT /devices/{id}/modules/{mid}", iothub.RegistryWrite, true, h.putIdentity},
		{"DELETE /devices/{id}/modules/{mid}", iothub.RegistryWrite, true, h.deleteIdentity},
		// Twins and direct methods.
		{"GET /twins/{id}", iothub.ServiceConnect, true, h.getTwin},
		{"PATCH /twins/{id}", iothub.ServiceConnect, true, h.updateTwin},
		{"PUT /twins/{id}", iothub.ServiceConnect, true, h.updateTwin},
		{"GET /twins/{id}/modules/{mid}", iothub.ServiceConnect, true, h.getTwin},
		{"PATCH /twins/{id}/modules/{mid}", iothub.ServiceConnect, true, h.updateTwin},
		{"PUT /twins/{id}/modules/{mid}", iothub.ServiceConnect, true, h.updateTwin},
		{"POST /twins/{id}/methods", iothub.ServiceConnect, true, h.invokeMethod},
		{"POST /twins/{id}/modules/{mid}/methods", iothub.ServiceConnect, true, h.invokeMethod},
		// Extensions: cloud-to-device messages (AMQP-only on the real hub).
		{"POST /devices/{id}/messages/devicebound", iothub.ServiceConnect, true, h.sendC2D},
		{"GET /devices/{id}/messages/devicebound", iothub.ServiceConnect, true, h.listC2D},
		{"GET /devices/{id}/messages/devicebound/{msgId}", iothub.ServiceConnect, true, h.getC2D},
		{"DELETE /devices/{id}/commands", iothub.ServiceConnect, true, h.purgeC2D}, // IoT Hub's Purge Cloud To Device Message Queue
		{"GET /hubkit/feedback", iothub.ServiceConnect, false, h.feedback},
		// Extensions: what the real hub offers through Event Hubs or not at all.
		{"GET /hubkit/telemetry", iothub.ServiceConnect, false, h.telemetry},
		{"GET /hubkit/rejections", iothub.ServiceConnect, false, h.rejections},
		// Extension: CA certificates for X.509 CA identities (Azure Resource Manager on the
		// real hub; certificates.go).
		{"GET /hubkit/certificates", iothub.RegistryRead, false, h.listCertificates},
		{"GET /hubkit/certificates/{name}", iothub.RegistryRead, false, h.getCertificate},
		{"PUT /hubkit/certificates/{name}", iothub.RegistryWrite, false, h.putCertificate},
		{"DELETE /hubkit/certificates/{name}", iothub.RegistryWrite, false, h.deleteCertificate},
		{"POST /hubkit/certificates/{name}/generateVerificationCode", iothub.RegistryWrite, false, h.generateVerificationCode},
		{"POST /hubkit/certificates/{name}/verify", iothub.RegistryWrite, false, h.verifyCertificate},
		// Extensions that drive the hub in tests (hubkit.go): no rights = no token needed.
		{"GET /hubkit/clock", 0, false, h.getClock},
		{"POST /hubkit/clock", iothub.ServiceConnect, false, h.moveClock},
		{"POST /hubkit/faults", iothub.ServiceConnect, false, h.fault},
		{"GET /hubkit/limits", iothub.ServiceConnect, false, h.getLimits},
		{"PUT /hubkit/limits", iothub.ServiceConnect, false, h.putLimits},
		{"POST /hubkit/reset", iothub.ServiceConnect, false, h.reset},
		// The device grader (grade.go).
		{"GET /hubkit/grade/cases", iothub.ServiceConnect, false, h.gradeCases},
		{"POST /hubkit/grade", iothub.ServiceConnect, false, h.startGrade},
		{"GET /hubkit/grade", iothub.ServiceConnect, false, h.listGrades},
		{"GET /hubkit/grade/{id}", iothub.ServiceConnect, false, h.getGrade},
		{"DELETE /hubkit/grade/{id}", iothub.ServiceConnect, false, h.cancelGrade},
	}
}

// guard authorizes the request, checks api-version and serves it.
func (h *handler) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.need == 0 {
			rt.serve(w, r) // a public route
			return
		}
		if rej := h.authorize(r, rt.need); rej != nil {
			h.log.Info("service API request refused", "method", r.Method, "path", r.URL.Path,
				"remoteAddr", r.RemoteAddr, "reason", string(rej.Reason), "detail", rej.Detail)
			h.writeUnauthorized(w, rej)
			return
		}
		// IoT Hub (and IoT Edge hub's registry controller) answer a missing
		// api-version with 400 InvalidProtocolVersion.
		if rt.apiVersion && r.URL.Query().Get("api-version") == "" {
			h.writeError(w, iothub.Errorf(iothub.CodeInvalidProtocolVersion, "the api-version query parameter is required (for example ?api-version=2021-04-12)"))
			return
		}
		rt.serve(w, r)
	})
}

// authorize checks the Authorization header as IoT Hub does: a shared access
// policy token whose sr covers "{host}/{path}", signed with the policy's
// primary or secondary key, not expired, from a policy holding need.
func (h *handler) authorize(r *http.Request, need iothub.Rights) *sas.Rejection {
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return sas.Reject(sas.ReasonNoPassword, "no Authorization header",
			"send Authorization: SharedAccessSignature sr={host}&sig=...&se=...&skn={policy}; mint one with: sastool gen --uri "+h.host+" --key KEY --policy iothubowner")
	}
	tok, err := sas.Parse(hdr)
	if err != nil {
		var rej *sas.Rejection
		if errors.As(err, &rej) {
			return rej
		}
		return sas.Reject(sas.ReasonMalformed, err.Error(),
			`the header must be the whole token: "SharedAccessSignature sr=...&sig=...&se=...&skn=..." (no "Bearer ", no quotes)`)
	}
	if tok.KeyName == "" {
		return sas.Reject(sas.ReasonUnknownPolicy, "the token has no skn: the service API needs a shared access policy token, not a device or module token",
			"sign with a policy key (for example iothubowner or service) and pass --policy/skn")
	}
	p, ok := h.b.Policy(tok.KeyName)
	primary, err1 := sas.DecodeKey(p.PrimaryKey)
	secondary, err2 := sas.DecodeKey(p.SecondaryKey)
	if !ok || err1 != nil || err2 != nil { // unusable keys: as if there were no such policy
		return sas.Reject(sas.ReasonUnknownPolicy, "no shared access policy named "+quote(tok.KeyName),
			"policy names are case-sensitive; IoT Hub's built-in ones are iothubowner, service, registryRead, registryReadWrite and device")
	}
	// The audience is written with the host as the token has it, so that an sr with
	// "host:port" (or another case) is accepted as over MQTT.
	host := h.host
	if res, err := sas.ParseResource(tok.Resource); err == nil && strings.EqualFold(res.Host, hostOnly(h.host)) {
		host = res.Authority()
	}
	audience := sas.HubResource(host) + r.URL.Path
	// No suspect keys: the diagnosis of a bad signature costs a fixed ~70
	// HMACs (well under a millisecond, less than the TLS handshake that
	// precedes it) and tells the caller what went wrong with its own token.
	if err := tok.Verify(primary, h.tnow(), sas.WithSecondaryKey(secondary), sas.WithAudience(audience), sas.WithSkew(h.skew)); err != nil {
		var rej *sas.Rejection
		if errors.As(err, &rej) {
			return rej
		}
		return sas.Reject(sas.ReasonMalformed, err.Error())
	}
	if !p.Rights.Grants(need) {
		return sas.Reject(sas.ReasonPolicyPermission,
			"policy "+quote(p.KeyName)+" has "+p.Rights.String()+"; "+r.Method+" "+r.URL.Path+" needs "+need.String(),
			"use a policy with "+needText(need)+" (IoT Hub's built-in "+builtinWith(need)+")")
	}
	return nil
}

func (h *handler) writeUnauthorized(w http.ResponseWriter, rej *sas.Rejection) {
	msg := "Unauthorized; hubkit: " + string(rej.Reason)
	if rej.Detail != "" {
		msg += ": " + rej.Detail
	}
	h.writeError(w, &iothub.Error{Code: iothub.CodeIotHubUnauthorizedAccess, Message: msg, Reason: string(rej.Reason), Hints: rej.Hints})
}

// needText names what grants need: RegistryRead is also granted by RegistryWrite.
func needText(need iothub.Rights) string {
	if need == iothub.RegistryRead {
		return "RegistryRead or RegistryWrite"
	}
	return need.String()
}

// builtinWith lists the built-in policies that grant need ("registryReadWrite or iothubowner").
func builtinWith(need iothub.Rights) string {
	var names []string
	for _, p := range iothub.BuiltinPolicies() {
		if p.Rights.Grants(need) {
			names = append(names, p.KeyName)
		}
	}
	return strings.Join(names, " or ")
}

func quote(s string) string { return `"` + s + `"` }

// hostOnly drops a ":port" from a host name.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}
