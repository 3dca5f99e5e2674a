// Package dashboard is fakehub's web dashboard: server-rendered HTML
// (html/template) over a Backend, live updates by server-sent events, a few
// lines of JavaScript and no build step. It is served on the service port at
// "/" and under "/ui/".
//
// Every page needs a login: a one-time link (Handler.NewLoginToken, printed
// in fakehub's banner, as Jupyter does) or a pasted service connection
// string, checked against the hub's shared access policies. The session
// cookie is HttpOnly, SameSite=Strict and Secure over HTTPS; every
// state-changing form carries a CSRF token, and cross-origin POSTs are
// refused besides (http.CrossOriginProtection). Device keys are rendered only
// when the user asks for them.
package dashboard
